; Boot sector for tests/firmware/fw_boot.sh disk: SeaBIOS loads it from a virtio-blk
; disk to 0x7C00; it prints LODGE-MBR-OK on the debug port 0x402 and halts.
bits 16
org 0x7c00
    mov si, msg
.next:
    lodsb
    test al, al
    jz .done
    mov dx, 0x402
    out dx, al
    jmp .next
.done:
    cli
    hlt
    jmp .done
msg: db "LODGE-MBR-OK", 10, 0
times 510-($-$$) db 0
dw 0xaa55
