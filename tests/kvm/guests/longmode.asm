; Guest (b): switches itself from real mode to long mode, checks that 64-bit
; registers hold 64 bits, prints "long mode\n" and exits with status 0.
%include "rom.inc"
%include "lm_entry.inc"
bits 64
lm_main:
    mov rax, 0x123456789abcdef0
    mov rbx, rax
    shr rbx, 32
    cmp ebx, 0x12345678
    jne .fail
    lea rsi, [rel msg]
    call puts64
    EXIT 0
.halt:
    hlt
    jmp .halt
.fail:
    EXIT 1
    jmp .halt
msg: db "long mode", 10, 0
ROM_END
