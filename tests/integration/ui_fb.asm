; Tiny multiboot guest for the UI tests: paints the linear framebuffer Lodge maps at
; 0xFD000000 (1024x768, XRGB8888) - top half red, bottom half blue, a 64x64 green
; square at (100,100) - then halts with interrupts off until the host stops it.
%define FB 0xFD000000
%define W 1024
%define H 768
%define MB_FLAGS 0x10000

bits 32
org 0x100000
mb_header:
    dd 0x1BADB002
    dd MB_FLAGS
    dd -(0x1BADB002 + MB_FLAGS)
    dd mb_header                ; header_addr
    dd 0x100000                 ; load_addr
    dd load_end                 ; load_end_addr
    dd bss_end                  ; bss_end_addr
    dd start                    ; entry_addr
start:
    cli
    cld
    mov edi, FB
    mov ecx, W * H / 2
    mov eax, 0x00ff0000
    rep stosd
    mov ecx, W * H / 2
    mov eax, 0x000000ff
    rep stosd
    mov edx, 100                ; row
.row:
    mov edi, edx
    imul edi, edi, W * 4
    add edi, FB + 100 * 4
    mov ecx, 64
    mov eax, 0x0000ff00
    rep stosd
    inc edx
    cmp edx, 164
    jne .row
.halt:
    hlt
    jmp .halt
load_end:
bss_end:
