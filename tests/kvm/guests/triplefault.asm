; Guest: loads an empty IDT and raises an exception; with no way to deliver it
; (or the #DF that follows) the CPU shuts down (triple fault).
%include "rom.inc"
bits 16
start:
    cli
    o32 lidt [cs:empty_idt]
    int3
    EXIT 1
.halt:
    hlt
    jmp .halt
empty_idt:
    dw 0
    dd 0
ROM_END
