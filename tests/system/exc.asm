; System test: exceptions and their error codes in 32-bit protected mode (ring 0).
%include "sys.inc"

test_main:
    PRINTLN "exceptions"
    PRINT "#DE: "
    TRY .de_done
    EXPECT_AT .de
    xor edx, edx
    mov eax, 1
    xor ecx, ecx
.de:
    div ecx
    PRINTLN "no fault"
.de_done:
    PRINT "#UD: "
    TRY .ud_done
    EXPECT_AT .ud
.ud:
    ud2
    PRINTLN "no fault"
.ud_done:
    PRINT "#BP: "
    TRY .bp_done
    EXPECT_AT .bp
.bp:
    int3
    PRINTLN "no trap"
.bp_done:
    PRINT "INTO OF=0: "
    xor eax, eax                        ; clears OF
    into
    PRINTLN "no trap"
    PRINT "#OF: "
    TRY .of_done
    mov al, 0x7f
    add al, 1                           ; sets OF
    EXPECT_AT .of
.of:
    into
    PRINTLN "no trap"
.of_done:
    PRINT "#BR: "
    TRY .br_done
    EXPECT_AT .br
    mov eax, 20
.br:
    bound eax, [bounds]
    PRINTLN "no fault"
.br_done:
    PRINT "BOUND in range: "
    mov eax, 15
    bound eax, [bounds]
    PRINTLN "ok"
    PRINT "#DB single step: "
    TRY .db_done
    EXPECT_AT .db
    pushfd
    or dword [esp], 0x100
    popfd
.db:
    nop
    nop
    PRINTLN "no trap"
.db_done:
    PRINT "#GP selector past GDT limit: "
    TRY .gp1_done
    EXPECT_AT .gp1
    mov ax, 0x1000
.gp1:
    mov ds, ax
    PRINTLN "no fault"
.gp1_done:
    PRINT "#GP TSS selector into DS: "
    TRY .gp2_done
    EXPECT_AT .gp2
    mov ax, SEL_TSS
.gp2:
    mov ds, ax
    PRINTLN "no fault"
.gp2_done:
    PRINT "#GP DPL3 data into SS: "
    TRY .gp3_done
    EXPECT_AT .gp3
    mov ax, SEL_DATA3
.gp3:
    mov ss, ax
    PRINTLN "no fault"
.gp3_done:
    PRINT "#GP null CS far jump: "
    TRY .gp4_done
    EXPECT_AT .gp4
.gp4:
    jmp 0:.gp4_done
    PRINTLN "no fault"
.gp4_done:
    PRINT "#GP write to code segment: "
    TRY .gp5_done
    EXPECT_AT .gp5
.gp5:
    mov [cs:bounds], eax
    PRINTLN "no fault"
.gp5_done:
    PRINT "#NP not-present data into DS: "
    TRY .np1_done
    EXPECT_AT .np1
    mov ax, SEL_DATA_NP
.np1:
    mov ds, ax
    PRINTLN "no fault"
.np1_done:
    mov ax, SEL_DATA0
    mov ds, ax
    PRINT "#SS not-present data into SS: "
    TRY .ss1_done
    EXPECT_AT .ss1
    mov ax, SEL_DATA_NP
.ss1:
    mov ss, ax
    PRINTLN "no fault"
.ss1_done:
    mov ax, SEL_DATA0
    mov ss, ax
    PRINT "#GP INT 0x42 to a gate of invalid type: "
    TRY .gp7_done
    EXPECT_AT .gp7
.gp7:
    int 0x42
    PRINTLN "no fault"
.gp7_done:
    PRINT "#NP INT 0x40 to a not-present gate: "
    mov ebx, 0x40
    mov eax, int41_handler
    mov ecx, 0x0e00
    call idt_set
    TRY .np2_done
    EXPECT_AT .np2
.np2:
    int 0x40
    PRINTLN "no fault"
.np2_done:
    PRINT "#GP INT 0x90 past the IDT limit: "
    lidt [small_idt_desc]
    TRY .gp6_done
    EXPECT_AT .gp6
.gp6:
    int 0x90
    PRINTLN "no fault"
.gp6_done:
    lidt [idt_desc]
    PRINT "INT 0x41 software interrupt: "
    mov ebx, 0x41
    mov eax, int41_handler
    mov ecx, 0x8e00
    call idt_set
    mov dword [counter], 0
    int 0x41
    HEX32 [counter]
    call newline
    PRINT "#DF: #GP with a not-present #GP gate: "
    mov ebx, 13
    mov eax, exc_stub_13
    mov ecx, 0x0e00
    call idt_set
    TRY .df_done
    EXPECT_AT .df
    mov ax, 0x1000
.df:
    mov ds, ax
    PRINTLN "no fault"
.df_done:
    mov ebx, 13
    mov eax, exc_stub_13
    mov ecx, 0x8e00
    call idt_set
    PRINT "priority: #GP segment limit before #DE: "
    TRY .pr_done
    EXPECT_AT .pr
    xor ecx, ecx
    xor edx, edx
    mov eax, 1
    mov bx, SEL_DATA_SMALL
    mov fs, bx
.pr:
    div dword [fs:0x2000]               ; past the limit and zero: the #GP wins
    PRINTLN "no fault"
.pr_done:
    PRINT "#GP segment limit: "
    TRY .lim_done
    EXPECT_AT .lim
    mov ax, SEL_DATA_SMALL
    mov fs, ax
.lim:
    mov eax, [fs:0xffe]
    PRINTLN "no fault"
.lim_done:
    ret

int41_handler:
    inc dword [counter]
    iretd

align 4
bounds: dd 10, 16
zero_dword: dd 0
counter: dd 0
small_idt_desc:
    dw 0x80 * 8 - 1
    dd IDT_BASE
