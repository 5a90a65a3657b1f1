; System test: privilege transitions in 32-bit protected mode: IRET to ring 3, a DPL3
; interrupt gate with the TSS stack switch (ESP0), a call gate, #GP from ring 3 on
; privileged instructions and the TSS I/O permission bitmap.
%include "sys.inc"

test_main:
    PRINTLN "privilege"
    mov ebx, 0x80
    mov eax, int80_handler
    mov ecx, 0xee00                     ; present, DPL3, 32-bit interrupt gate
    call idt_set
    mov ebx, 0x81
    mov eax, int81_handler
    mov ecx, 0xee00
    call idt_set
    mov ebx, 0x41
    mov eax, int81_handler
    mov ecx, 0x8e00                     ; DPL0: ring 3 may not use it
    call idt_set
    ; call gate at 0x40: DPL3, 32-bit, no parameters, to SEL_CODE0:callgate_target
    mov eax, callgate_target
    mov [gdt + 0x40], ax
    mov word [gdt + 0x42], SEL_CODE0
    mov word [gdt + 0x44], 0xec00       ; present, DPL3, type 0xc (32-bit call gate)
    shr eax, 16
    mov [gdt + 0x46], ax

    PRINT "IRET to ring 3: cs="
    TRY .r1_done
    RING3 0
    mov ax, cs
    HEX8 eax                            ; the debug console port is allowed in the bitmap
    PRINT " ds="
    mov ax, ds
    HEX8 eax
    call newline
    PRINT "INT 0x80 from ring 3: "
    mov eax, 0x1234
    int 0x80
    PRINT "back in ring 3: cs="
    mov ax, cs
    HEX8 eax
    call newline
    PRINT "call gate: "
    call SEL_CALLGATE:0
    PRINT "returned to cs="
    mov ax, cs
    HEX8 eax
    PRINT " esp="
    mov eax, esp
    call puthex
    call newline
    int 0x81
.r1_done:

    PRINT "ring 3 HLT: "
    TRY .p1_done
    RING3 0
    EXPECT_AT .p1
.p1:
    hlt
    int 0x81
.p1_done:
    PRINT "ring 3 MOV from CR0: "
    TRY .p2_done
    RING3 0
    EXPECT_AT .p2
.p2:
    mov eax, cr0
    int 0x81
.p2_done:
    PRINT "ring 3 MOV to CR3: "
    TRY .p3_done
    RING3 0
    EXPECT_AT .p3
    xor eax, eax
.p3:
    mov cr3, eax
    int 0x81
.p3_done:
    PRINT "ring 3 CLI with IOPL 0: "
    TRY .p4_done
    RING3 0
    EXPECT_AT .p4
.p4:
    cli
    int 0x81
.p4_done:
    PRINT "ring 3 IN 0x80 with IOPL 0 (bitmap denies): "
    TRY .p5_done
    RING3 0
    EXPECT_AT .p5
.p5:
    in al, 0x80
    int 0x81
.p5_done:
    PRINT "ring 3 OUT 0xf4 with IOPL 0 (bitmap denies): "
    TRY .p6_done
    RING3 0
    EXPECT_AT .p6
    mov al, 0x7f                        ; would end the run with status 255 if allowed
.p6:
    out 0xf4, al
    int 0x81
.p6_done:
    PRINT "ring 3 IN 0x608 past the bitmap: "
    TRY .p7_done
    RING3 0
    EXPECT_AT .p7
    mov dx, 0x608
.p7:
    in eax, dx
    int 0x81
.p7_done:
    PRINT "ring 3 IN 0x80 with IOPL 3: "
    TRY .p8_done
    RING3 3
    in al, 0x80
    PRINT "allowed"
    call newline
    int 0x81
.p8_done:
    PRINT "ring 3 INT 0x41 through a DPL0 gate: "
    TRY .p9_done
    RING3 0
    EXPECT_AT .p9
.p9:
    int 0x41
    int 0x81
.p9_done:
    PRINT "ring 3 LGDT: "
    TRY .p10_done
    RING3 0
    EXPECT_AT .p10
.p10:
    lgdt [gdt_desc]
    int 0x81
.p10_done:
    PRINT "ring 3 load of a DPL0 data segment: "
    TRY .p11_done
    RING3 0
    EXPECT_AT .p11
    mov ax, SEL_DATA0
.p11:
    mov ds, ax
    int 0x81
.p11_done:
    PRINT "ring 3 far jump to ring 0 code: "
    TRY .p12_done
    RING3 0
    EXPECT_AT .p12
.p12:
    jmp SEL_CODE0:.p12_done
    int 0x81
.p12_done:
    PRINT "ring 3 write to read-only data through CS: "
    TRY .p13_done
    RING3 0
    EXPECT_AT .p13
.p13:
    mov [cs:cs_scratch], eax
    int 0x81
.p13_done:
    ret

; INT 0x80: report what the gate delivered, check the stack is TSS.ESP0, return to ring 3.
int80_handler:
    push ds
    push eax
    mov ax, SEL_DATA0
    mov ds, ax
    PRINT "cpl "
    mov ax, cs
    and eax, 3
    call putdigit
    PRINT " eax="
    mov eax, [esp]
    call puthex
    PRINT " from cs="
    HEX8 [esp + 12]
    PRINT " ss="
    HEX8 [esp + 24]
    PRINT " if="
    mov eax, [esp + 16]
    shr eax, 9
    and eax, 1
    call putdigit
    PRINT " esp0 frame "
    lea eax, [esp + 28]
    cmp eax, [TSS_BASE + 4]
    jne .bad
    PRINTLN "ok"
    jmp .out
.bad:
    PRINTLN "wrong"
.out:
    pop eax
    pop ds
    iretd

; INT 0x81: leave ring 3 for good: resume the test in ring 0.
int81_handler:
    mov ax, SEL_DATA0
    mov ds, ax
    mov es, ax
    PRINTLN "back to ring 0"
    mov esp, [resume_esp]
    jmp [resume_eip]

; Call gate target: ring 0 on the ESP0 stack with the caller's SS:ESP, CS:EIP above.
callgate_target:
    push ds
    mov ax, SEL_DATA0
    mov ds, ax
    PRINT "cpl "
    mov ax, cs
    and eax, 3
    call putdigit
    PRINT " caller cs="
    HEX8 [esp + 8]
    PRINT " caller ss="
    HEX8 [esp + 16]
    PRINT " esp0 frame "
    lea eax, [esp + 20]
    cmp eax, [TSS_BASE + 4]
    jne .bad
    PRINTLN "ok"
    jmp .out
.bad:
    PRINTLN "wrong"
.out:
    pop ds
    retf

align 4
cs_scratch: dd 0
