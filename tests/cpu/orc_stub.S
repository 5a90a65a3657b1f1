/* Native side of the CPU oracle: load a test case's state into the host CPU, run its bytes,
 * save the state back. All state lives in the control page at ORC_CTRL (a fixed address below
 * 2 GiB), so the exit stub can reach it with absolute addressing without any free register.
 * Layout: see ORC_CTRL_* in oracle.h. */
        .set CTRL, 0x10020000
        .set HOST_RSP, CTRL + 0x000
        .set CODE_ENTRY, CTRL + 0x008
        .set FAR32, CTRL + 0x018
        .set IN_FLAGS, CTRL + 0x020
        .set OUT_FLAGS, CTRL + 0x028
        .set IN_R, CTRL + 0x040
        .set OUT_R, CTRL + 0x0c0
        .set IN_FX, CTRL + 0x200
        .set OUT_FX, CTRL + 0x400
        .set HOST_FX, CTRL + 0x600
        .set STACK_TOP, CTRL + 0x2000

        .text
/* int orc_native_enter(int mode32): runs the case; returns 0 when it reached the exit stub,
 * 1 when the signal handler redirected to orc_native_resume. */
        .globl orc_native_enter
        .type orc_native_enter, @function
orc_native_enter:
        push %rbx
        push %rbp
        push %r12
        push %r13
        push %r14
        push %r15
        movq %rsp, HOST_RSP
        fxsave64 HOST_FX
        movl $0x2b, %eax        /* DS/ES = user data in both modes: MOV r/m,Sreg sees 0x2b */
        movw %ax, %ds
        movw %ax, %es
        test %edi, %edi
        jnz 1f
        fxrstor64 IN_FX
        pushq IN_FLAGS
        popfq
        movq IN_R + 0x00, %rax
        movq IN_R + 0x08, %rcx
        movq IN_R + 0x10, %rdx
        movq IN_R + 0x18, %rbx
        movq IN_R + 0x20, %rsp
        movq IN_R + 0x28, %rbp
        movq IN_R + 0x30, %rsi
        movq IN_R + 0x38, %rdi
        movq IN_R + 0x40, %r8
        movq IN_R + 0x48, %r9
        movq IN_R + 0x50, %r10
        movq IN_R + 0x58, %r11
        movq IN_R + 0x60, %r12
        movq IN_R + 0x68, %r13
        movq IN_R + 0x70, %r14
        movq IN_R + 0x78, %r15
        jmp *CODE_ENTRY
1:      /* 32-bit case: a far jump to 0x23:code */
        fxrstor64 IN_FX
        pushq IN_FLAGS
        popfq
        movq IN_R + 0x00, %rax
        movq IN_R + 0x08, %rcx
        movq IN_R + 0x10, %rdx
        movq IN_R + 0x18, %rbx
        movq IN_R + 0x20, %rsp
        movq IN_R + 0x28, %rbp
        movq IN_R + 0x30, %rsi
        movq IN_R + 0x38, %rdi
        movq IN_R + 0x40, %r8
        movq IN_R + 0x48, %r9
        movq IN_R + 0x50, %r10
        movq IN_R + 0x58, %r11
        movq IN_R + 0x60, %r12
        movq IN_R + 0x68, %r13
        movq IN_R + 0x70, %r14
        movq IN_R + 0x78, %r15
        ljmpl *FAR32
        .size orc_native_enter, .-orc_native_enter

/* Reached by "jmp *[exit slot]" at the end of the case's code. */
        .globl orc_native_exit
        .type orc_native_exit, @function
orc_native_exit:
        movq %rax, OUT_R + 0x00
        movq %rcx, OUT_R + 0x08
        movq %rdx, OUT_R + 0x10
        movq %rbx, OUT_R + 0x18
        movq %rsp, OUT_R + 0x20
        movq %rbp, OUT_R + 0x28
        movq %rsi, OUT_R + 0x30
        movq %rdi, OUT_R + 0x38
        movq %r8, OUT_R + 0x40
        movq %r9, OUT_R + 0x48
        movq %r10, OUT_R + 0x50
        movq %r11, OUT_R + 0x58
        movq %r12, OUT_R + 0x60
        movq %r13, OUT_R + 0x68
        movq %r14, OUT_R + 0x70
        movq %r15, OUT_R + 0x78
        movq $STACK_TOP, %rsp
        pushfq
        popq OUT_FLAGS
        fxsave64 OUT_FX
        cld
        fxrstor64 HOST_FX
        movq HOST_RSP, %rsp
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        xorl %eax, %eax
        ret
        .size orc_native_exit, .-orc_native_exit

/* The signal handler points the interrupted context here after saving it. */
        .globl orc_native_resume
        .type orc_native_resume, @function
orc_native_resume:
        cld
        fxrstor64 HOST_FX
        movq HOST_RSP, %rsp
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        movl $1, %eax
        ret
        .size orc_native_resume, .-orc_native_resume

        .section .note.GNU-stack,"",@progbits
