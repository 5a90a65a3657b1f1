; Boot-sector guest for bench/console: loaded by SeaBIOS from a raw disk, identical under
; Lodge and QEMU (both stdvga + i8042). It switches to 32-bit protected mode, finds the
; stdvga's linear framebuffer (BAR0 of 00:02.0), sets a 1920x1080x32 mode through the Bochs
; VBE DISPI ports (the mode set clears VRAM to black), paints a 64x64 white square at
; (100,100), prints LODGE-CONSOLE-READY on the debug port 0x402 and halts with only IRQ1
; unmasked. Each keyboard make code C repaints the square grey C,C,C: the host measures
; how long that write takes to reach the window.
%define W 1920
%define H 1080
%define SQ_X 100
%define SQ_Y 100
%define STAGE2_SECTORS 3

bits 16
org 0x7c00
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    mov ah, 0x02                ; read the rest of the program behind this sector
    mov al, STAGE2_SECTORS
    mov cx, 0x0002
    xor dh, dh
    mov bx, 0x7e00
    int 0x13
    cli
    lgdt [gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:pm32
times 510-($-$$) db 0
dw 0xaa55

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7c00
    cld
    mov dx, 0xcf8               ; BAR0 of 00:02.0
    mov eax, 0x80001010
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    and eax, 0xfffffff0
    mov [fb], eax
    mov bx, 4                   ; ENABLE = 0
    xor ax, ax
    call dispi
    mov bx, 1
    mov ax, W
    call dispi
    mov bx, 2
    mov ax, H
    call dispi
    mov bx, 3
    mov ax, 32
    call dispi
    mov bx, 4
    mov ax, 0x41                ; ENABLED | LFB_ENABLED
    call dispi
    mov eax, 0x00ffffff
    call square

    mov edi, idt                ; every vector acknowledges the PIC; 0x21 is the keyboard
    mov ecx, 256
.gate:
    mov eax, ignore
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    add edi, 8
    loop .gate
    mov eax, kbd
    mov [idt + 0x21 * 8], ax
    shr eax, 16
    mov [idt + 0x21 * 8 + 6], ax
    lidt [idt_desc]
    mov al, 0x11                ; 8259 pair at 0x20/0x28, only IRQ1 unmasked
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
.drain:
    in al, 0x64
    test al, 1
    jz .ready
    in al, 0x60
    jmp .drain
.ready:
    mov esi, msg
    mov dx, 0x402
.msg:
    lodsb
    test al, al
    jz .idle
    out dx, al
    jmp .msg
.idle:
    sti
.halt:
    hlt
    jmp .halt

; bx = DISPI index, ax = value
dispi:
    push eax
    mov dx, 0x1ce
    mov ax, bx
    out dx, ax
    pop eax
    mov dx, 0x1cf
    out dx, ax
    ret

; eax = colour of the 64x64 square at (SQ_X, SQ_Y)
square:
    mov edx, SQ_Y
.row:
    mov edi, edx
    imul edi, edi, W * 4
    add edi, [fb]
    add edi, SQ_X * 4
    mov ecx, 64
    rep stosd
    inc edx
    cmp edx, SQ_Y + 64
    jne .row
    ret

kbd:
    pushad
.next:
    in al, 0x64
    test al, 1
    jz .done
    in al, 0x60
    test al, 0x80
    jnz .next
    movzx eax, al
    imul eax, eax, 0x010101
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
    dq 0x00cf9a000000ffff
    dq 0x00cf92000000ffff
gdt_desc:
    dw gdt_desc - gdt - 1
    dd gdt
idt_desc:
    dw 256 * 8 - 1
    dd idt
fb: dd 0
msg: db "LODGE-CONSOLE-READY", 10, 0
times 512 * (1 + STAGE2_SECTORS) - ($ - $$) db 0
idt equ 0x10000
