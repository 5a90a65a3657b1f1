; Exit round-trip benchmark firmware: N `out` writes to port 0x80 (each one a trip
; from the guest to the VMM and back), then power-off through port 0x604 as a
; 16-bit write of SLP_TYP=5 | SLP_EN: Lodge sees an ACPI PM1a_CNT S5 request, QEMU
; an isa-debug-exit device placed at 0x604.
; Assemble: nasm -f bin -DN=10000 -o img guest.asm   (64 KiB, reset vector at the end)
%ifndef N
%define N 10000
%endif
bits 16
start:
    cli
    mov ecx, N
    mov dx, 0x80
.loop:
    out dx, al
    dec ecx
    jnz .loop
    mov dx, 0x604
    mov ax, (5 << 10) | (1 << 13)
    out dx, ax
.halt:
    hlt
    jmp .halt
    times 0xfff0 - ($ - $$) db 0xf4
    jmp near start
    times 0x10000 - ($ - $$) db 0
