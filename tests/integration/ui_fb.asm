; Tiny multiboot guest for the UI tests. It paints the linear framebuffer Lodge maps
; at 0xFD000000 (1024x768, XRGB8888): top half red, bottom half blue, a 64x64 green
; square at (100,100) and a 64x64 white "key" square at (300,100). Then it waits for
; keyboard interrupts (IRQ1 through the 8259, vector 0x21): each make code C read
; from port 0x60 repaints the key square grey C,C,C. A break code leaves it alone.
; The handler reads while the status port says the output buffer is full, as Linux
; does: one interrupt may stand for several queued bytes.
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
    mov esp, stack_top
    lgdt [gdt_desc]             ; our own flat GDT: the loader's may be anywhere
    jmp 0x08:.reload
.reload:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax

    mov edi, FB
    mov ecx, W * H / 2
    mov eax, 0x00ff0000
    rep stosd
    mov ecx, W * H / 2
    mov eax, 0x000000ff
    rep stosd
    mov eax, 0x0000ff00
    mov ebx, 100
    call square
    mov eax, 0x00ffffff
    mov ebx, 300
    call square

    ; IDT: every vector to one handler that only acknowledges the PIC.
    mov edi, idt
    mov ecx, 256
.gate:
    mov eax, ignore
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00  ; present, DPL 0, 32-bit interrupt gate
    shr eax, 16
    mov [edi + 6], ax
    add edi, 8
    loop .gate
    mov eax, kbd
    mov [idt + 0x21 * 8], ax
    shr eax, 16
    mov [idt + 0x21 * 8 + 6], ax
    lidt [idt_desc]

    ; 8259 pair: vectors 0x20/0x28, cascade on IRQ2, only IRQ1 unmasked.
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 4
    out 0x21, al
    mov al, 2
    out 0xa1, al
    mov al, 1
    out 0x21, al
    out 0xa1, al
    mov al, 0xfd
    out 0x21, al
    mov al, 0xff
    out 0xa1, al
.drain:                         ; anything queued before we listened
    in al, 0x64
    test al, 1
    jz .idle
    in al, 0x60
    jmp .drain
.idle:
    sti
.halt:
    hlt
    jmp .halt

; eax = colour, ebx = x of a 64x64 square at y = 100
square:
    mov edx, 100
.row:
    mov edi, edx
    imul edi, edi, W * 4
    lea edi, [edi + ebx * 4 + FB]
    mov ecx, 64
    rep stosd
    inc edx
    cmp edx, 164
    jne .row
    ret

kbd:
    pushad
.next:                          ; drain: the controller may hold more bytes than edges
    in al, 0x64
    test al, 1
    jz .done
    in al, 0x60
    test al, 0x80
    jnz .next
    movzx eax, al
    imul eax, eax, 0x010101
    mov ebx, 300
    call square
    jmp .next
.done:
    mov al, 0x20
    out 0x20, al
    popad
    iret

ignore:
    push eax
    mov al, 0x20
    out 0x20, al
    out 0xa0, al
    pop eax
    iret

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff       ; 0x08: code, flat 4 GiB
    dq 0x00cf92000000ffff       ; 0x10: data, flat 4 GiB
gdt_desc:
    dw gdt_desc - gdt - 1
    dd gdt
idt_desc:
    dw 256 * 8 - 1
    dd idt
load_end:

absolute load_end
alignb 16
idt: resb 256 * 8
stack: resb 4096
stack_top:
bss_end:
