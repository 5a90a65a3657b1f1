; Guest (a): real mode, prints "hello\n", reports status 0 on the exit port, then
; asks for ACPI S5 (soft-off) like a PC would.
%include "rom.inc"
bits 16
start:
    cli
    xor ax, ax
    mov ss, ax
    mov sp, STACK_TOP
    mov si, msg
    call puts16
    EXIT 0
    mov dx, PM1A_CNT
    mov ax, ACPI_S5
    out dx, ax
.halt:
    hlt
    jmp .halt
msg: db "hello", 10, 0
%include "puts16.inc"
ROM_END
