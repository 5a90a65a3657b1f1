; Guest: prints the hypervisor signature from CPUID 0x40000000 and "tsc\n" when
; leaf 0x40000010 reports a TSC frequency, then exits with status 0.
%include "rom.inc"
bits 16
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, STACK_TOP
    mov eax, 0x40000000
    cpuid
    mov [0x500], ebx
    mov [0x504], ecx
    mov [0x508], edx
    mov si, 0x500
    mov cx, 12
    mov dx, SERIAL
.next:
    lodsb
    test al, al                   ; the signature is NUL-padded
    jz .skip
    out dx, al
.skip:
    loop .next
    mov al, 10
    out dx, al
    mov eax, 0x40000010
    cpuid
    test eax, eax
    jz .out
    mov si, tsc
    call puts16
.out:
    EXIT 0
.halt:
    hlt
    jmp .halt
tsc: db "tsc", 10, 0
%include "puts16.inc"
ROM_END
