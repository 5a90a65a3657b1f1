; Soft-engine probe: the most trivial firmware image. Real mode from the reset vector,
; "ok" on COM1, then ACPI S5 through PM1a_CNT (0x604) so `lodge run` exits 0.
; A 64 KiB image: mapped at 0xFFFF0000, reset vector at offset 0xFFF0.
bits 16
org 0
start:
    cli
    mov dx, 0x3f8
    mov al, 'o'
    out dx, al
    mov al, 'k'
    out dx, al
    mov al, 10
    out dx, al
    mov dx, 0x604
    mov ax, (5 << 10) | (1 << 13)      ; SLP_TYP 5, SLP_EN
    out dx, ax
.halt:
    hlt
    jmp .halt
    times 0xfff0 - ($ - $$) db 0xf4
    jmp near start                     ; CS base is 0xFFFF0000 at reset
    times 0x10000 - ($ - $$) db 0
