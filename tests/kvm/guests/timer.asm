; Guest (d): programs the 8259 (IRQ 0-7 -> vectors 0x20-0x27) and PIT channel 0
; (rate generator, ~1 kHz), counts IRQ 0 in a real-mode handler, and once three
; ticks arrived prints "tick tick tick\n" and exits with status 0.
%include "rom.inc"
%define COUNT 0x500
bits 16
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, STACK_TOP
    mov word [COUNT], 0
    mov word [0x20 * 4], irq0     ; IVT entry for vector 0x20 -> F000:irq0 (ROM alias)
    mov word [0x20 * 4 + 2], 0xf000
    ; master 8259: ICW1 edge + ICW4, ICW2 base 0x20, ICW3 slave on IR2, ICW4 8086
    mov al, 0x11
    out 0x20, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x01
    out 0x21, al
    mov al, 0x11
    out 0xa0, al
    mov al, 0x28
    out 0xa1, al
    mov al, 0x02
    out 0xa1, al
    mov al, 0x01
    out 0xa1, al
    mov al, 0xfe                  ; only IRQ 0
    out 0x21, al
    mov al, 0xff
    out 0xa1, al
    ; PIT channel 0, lobyte/hibyte, mode 2, divisor 1193
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti
.wait:
    hlt
    cmp word [COUNT], 3
    jb .wait
    cli
    mov si, msg
    call puts16
    EXIT 0
.halt:
    hlt
    jmp .halt

irq0:
    push ax
    inc word [COUNT]
    mov al, 0x20                  ; non-specific EOI
    out 0x20, al
    pop ax
    iret

msg: db "tick tick tick", 10, 0
%include "puts16.inc"
ROM_END
