; Boot image for tests/storage/eltorito.sh. SeaBIOS loads it at 0000:7C00 with DL = the drive:
; as an El Torito no-emulation image from the AHCI CD-ROM (READ(10) of the boot catalog and
; this image), or with -DDISK as the MBR of an AHCI disk. It prints a marker to the debug port,
; reads a sector through INT 13h AH=42h and checks it (CD: the primary volume descriptor at
; LBA 16, "CD001"; disk: LBA 1, "LODGE-LBA1"), then ends the run through test-exit.
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
%ifdef DISK
    cmp dword [0x8000], 'LODG'
    jne fail
    cmp dword [0x8004], 'E-LB'
    jne fail
%else
    cmp dword [0x8001], 'CD00'
    jne fail
    cmp byte [0x8005], '1'
    jne fail
%endif
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
    dw 1                        ; one sector (2048 bytes on the CD, 512 on the disk)
    dw 0x8000, 0                ; to 0000:8000
%ifdef DISK
    dq 1
%else
    dq 16                       ; primary volume descriptor
%endif
msg_boot: db "LODGE-ELTORITO-BOOT-OK", 10, 0
msg_read: db "LODGE-INT13-READ-OK", 10, 0
msg_fail: db "LODGE-INT13-READ-FAIL", 10, 0

%ifdef DISK
times 510 - ($ - $$) db 0
dw 0xaa55                       ; MBR boot signature
%else
times 2048 - ($ - $$) db 0
%endif
