; Boot sector for tests/firmware/vga_planar.sh: SeaBIOS loads it from a virtio-blk disk to
; 0x7C00. It draws through the VGA BIOS and the legacy window, reports on the debug port
; 0x402 and halts; the run's screendump then has to show the pixels.
;   default:    mode 12h (640x480x16, planar): INT 10h write dot (colour 4 at 100,50 and
;               9 at 101,50); a colour-14 box through set/reset (write mode 0) at x 80-159,
;               y 200-209; INT 10h read dot at 100,50 must return 4.
;   -DVBE_BANK: VBE mode 101h (640x480x8) banked (no LFB bit): colour 9 at VRAM 0x10100
;               (bank 1, offset 0x100: x 512, y 102) and colour 4 at (0, 0).
;   -DMODE13:   mode 13h (320x200x256, chain-4): colour 4 at (100, 50) stored through
;               0xA0000, colour 9 at (101, 50) by INT 10h write dot; INT 10h read dot at
;               (100, 50) must return 4.
bits 16
org 0x7c00
    xor ax, ax
    mov ds, ax
%ifdef MODE13
    mov ax, 0x0013
    int 0x10
    mov ax, 0xa000
    mov es, ax
    mov byte [es:50 * 320 + 100], 4
    mov ax, 0x0c09
    xor bx, bx
    mov cx, 101
    mov dx, 50
    int 0x10
    mov ah, 0x0d
    mov cx, 100
    int 0x10
    cmp al, 4
    jne fail
%elifdef VBE_BANK
    mov ax, 0x4f02
    mov bx, 0x0101
    int 0x10
    cmp ax, 0x004f
    jne fail
    mov ax, 0xa000
    mov es, ax
    mov byte [es:0], 4
    mov ax, 0x4f05          ; window A to bank 1 (64 KiB granularity)
    xor bx, bx
    mov dx, 1
    int 0x10
    cmp ax, 0x004f
    jne fail
    mov byte [es:0x100], 9
%else
    mov ax, 0x0012
    int 0x10
    mov ax, 0x0c04          ; write dot: colour 4 at (100, 50)
    xor bx, bx
    mov cx, 100
    mov dx, 50
    int 0x10
    mov ax, 0x0c09
    mov cx, 101
    int 0x10
    ; Box through set/reset: enable set/reset on all planes, colour 14, bit mask all.
    mov dx, 0x3ce
    mov ax, 0x0e00
    out dx, ax
    mov ax, 0x0f01
    out dx, ax
    mov ax, 0xff08
    out dx, ax
    mov ax, 0xa000
    mov es, ax
    mov di, 200 * 80 + 10
    mov bx, 10
.row:
    mov cx, 10
    push di
    rep stosb               ; AL is ignored: every plane comes from set/reset
    pop di
    add di, 80
    dec bx
    jnz .row
    mov ax, 0x0001          ; enable set/reset off again
    out dx, ax
    mov ah, 0x0d            ; read dot at (100, 50)
    xor bx, bx
    mov cx, 100
    mov dx, 50
    int 0x10
    cmp al, 4
    jne fail
%endif
    mov si, ok
    jmp print
fail:
    mov si, bad
print:
    lodsb
    test al, al
    jz .done
    mov dx, 0x402
    out dx, al
    jmp print
.done:
    cli
    hlt
    jmp .done
ok: db "LODGE-VGA-DONE", 10, 0
bad: db "LODGE-VGA-FAIL", 10, 0
times 510-($-$$) db 0
dw 0xaa55
