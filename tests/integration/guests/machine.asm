; Test firmware for `lodge run --bios`: 64 KiB mapped at 0xFFFF0000 (CS base 0xFFFF0000
; at reset, so code and data use CS-relative offsets). Build variants with -D:
;   RESET_CF9   count boots in RAM at 0x500, reset through port 0xCF9 on the first boot
;   RESET_KBD   the same through the keyboard controller (0xFE to port 0x64)
;   TRIPLE      load an empty IDT and raise #BP: triple fault
;   ECHO        echo COM1 input back (polling LSR.DR); 'q' powers off
; Without a variant it prints "hello" and powers off through ACPI PM1a_CNT (S5).
bits 16
org 0

%define COM1      0x3f8
%define PM1A_CNT  0x604
%define S5        ((5 << 10) | (1 << 13))
%define BOOTS     0x500            ; RAM survives a reset: the boot counter lives here
%ifdef RESET_CF9
%define RESET
%endif
%ifdef RESET_KBD
%define RESET
%endif

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
%ifdef TRIPLE
    ; Protected mode with an empty IDT: #BP cannot be delivered, nor the #GP and #DF
    ; that follow, so the CPU shuts down. (Real mode is not used for this: a nested
    ; host that emulates real mode may ignore the IVT limit.)
    o32 lidt [cs:empty_idt]
    o32 lgdt [cs:gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:(0xffff0000 + pm32)
bits 32
pm32:
    int3
    hlt
bits 16
%elifdef ECHO
.poll:
    mov dx, COM1 + 5               ; LSR
    in al, dx
    test al, 1                     ; DR: a byte waits in RBR
    jz .poll
    mov dx, COM1
    in al, dx
    out dx, al
    cmp al, 'q'
    jne .poll
    jmp poweroff
%elifdef RESET
    mov si, msg_boot
    call puts
    inc byte [BOOTS]
    cmp byte [BOOTS], 2
    jae .second
%ifdef RESET_CF9
    mov dx, 0xcf9
    mov al, 0x06                   ; SYS_RST | RST_CPU: hard reset
    out dx, al
%else
    mov al, 0xfe                   ; pulse the CPU reset line
    out 0x64, al
%endif
    mov si, msg_alive              ; must not appear: the reset takes effect at once
    call puts
    jmp halt
.second:
    mov si, msg_second
    call puts
    jmp poweroff
%else
    mov si, msg_hello
    call puts
%endif
poweroff:
    mov dx, PM1A_CNT
    mov ax, S5
    out dx, ax
    mov si, msg_alive              ; must not appear either
    call puts
halt:
    hlt
    jmp halt

; Print the NUL-terminated string at cs:si on COM1 (the UART accepts at once).
puts:
    cs lodsb
    test al, al
    jz .done
    mov dx, COM1
    out dx, al
    jmp puts
.done:
    ret

msg_hello:  db "hello", 10, 0
msg_boot:   db "boot", 10, 0
msg_second: db "second", 10, 0
msg_alive:  db "still running", 10, 0
empty_idt:  dw 0
            dd 0
            align 8
gdt:        dq 0
            dq 0x00cf9b000000ffff      ; 0x08: flat 32-bit code
gdtr:       dw gdtr - gdt - 1
            dd 0xffff0000 + gdt

    times 0xfff0 - ($ - $$) db 0xf4
    jmp near start                 ; reset vector F000:FFF0
    times 0x10000 - ($ - $$) db 0
