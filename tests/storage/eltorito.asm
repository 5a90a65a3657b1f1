; El Torito no-emulation boot image for tests/storage/eltorito.sh. SeaBIOS loads it at
; 0000:7C00 from the AHCI CD-ROM (READ(10) of the boot catalog and this image) with DL = the
; drive. It prints a marker to the debug port, reads the ISO's primary volume descriptor
; (LBA 16) through INT 13h AH=42h and checks "CD001", then ends the run through test-exit.
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    mov [drive], dl
    mov si, msg_boot
    call puts
    mov si, dap
    mov dl, [drive]
    mov ah, 0x42
    int 0x13
    jc fail
    cmp dword [0x8001], 'CD00'
    jne fail
    cmp byte [0x8005], '1'
    jne fail
    mov si, msg_read
    call puts
    mov al, 0x10                ; test-exit status (0x10 << 1) | 1 = 33
    out 0xf4, al
    jmp halt
fail:
    mov si, msg_fail
    call puts
    mov al, 0x20                ; status 65
    out 0xf4, al
halt:
    cli
    hlt
    jmp halt

puts:
    lodsb
    test al, al
    jz .done
    out 0xe9, al
    jmp puts
.done:
    ret

drive: db 0
align 4
dap:
    db 16, 0
    dw 1                        ; one 2048-byte sector
    dw 0x8000, 0                ; to 0000:8000
    dq 16                       ; LBA 16: primary volume descriptor
msg_boot: db "LODGE-ELTORITO-BOOT-OK", 10, 0
msg_read: db "LODGE-CD-INT13-READ-OK", 10, 0
msg_fail: db "LODGE-CD-INT13-READ-FAIL", 10, 0

times 2048 - ($ - $$) db 0
