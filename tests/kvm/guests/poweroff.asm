; Guest (f): ACPI-style power-off. A PM1a_CNT write without SLP_EN must not power
; off; the guest says so ("still on\n") and then writes SLP_TYP=5 | SLP_EN.
%include "rom.inc"
bits 16
start:
    cli
    xor ax, ax
    mov ss, ax
    mov sp, STACK_TOP
    mov dx, PM1A_CNT
    mov ax, 5 << 10
    out dx, ax
    mov si, msg
    call puts16
    mov dx, PM1A_CNT
    mov ax, ACPI_S5
    out dx, ax
    mov si, bad
    call puts16
.halt:
    hlt
    jmp .halt
msg: db "still on", 10, 0
bad: db "not off", 10, 0
%include "puts16.inc"
ROM_END
