; Guest: interrupts injected by the VMM. In real mode it asks the harness (port
; 0x520) to pulse GSI 1, which the in-kernel 8259 delivers as vector 0x21, then to
; send an MSI for vector 0x40 to APIC 0 (the local APIC is switched to x2APIC mode
; so real-mode code can reach it through MSRs). Each handler counts; the guest
; prints "irq msi\n" and exits with status 0.
%include "rom.inc"
%define COUNT1  0x600
%define COUNT2  0x604
%define REQ     0x520

; WAIT_COUNT addr: sleep until [addr] != 0 (sti; hlt has no window for a lost wakeup)
%macro WAIT_COUNT 1
%%again:
    cli
    cmp dword [%1], 0
    jne %%done
    sti
    hlt
    jmp %%again
%%done:
%endmacro

bits 16
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, STACK_TOP
    mov dword [COUNT1], 0
    mov dword [COUNT2], 0
    mov word [0x21 * 4], irq1         ; IVT -> F000:handler (ROM alias)
    mov word [0x21 * 4 + 2], 0xf000
    mov word [0x40 * 4], msi
    mov word [0x40 * 4 + 2], 0xf000
    ; 8259: vectors 0x20-0x27 / 0x28-0x2f, only IRQ 1 unmasked
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x02
    out 0xa1, al
    mov al, 0x01
    out 0x21, al
    out 0xa1, al
    mov al, 0xfd
    out 0x21, al
    mov al, 0xff
    out 0xa1, al
    ; local APIC: x2APIC mode (IA32_APIC_BASE.EXTD), SVR = 0x1ff
    mov ecx, 0x1b
    rdmsr
    or eax, 1 << 10
    wrmsr
    mov ecx, 0x80f
    mov eax, 0x1ff
    xor edx, edx
    wrmsr
    mov dx, REQ
    mov al, 1                         ; harness: pulse GSI 1
    out dx, al
    WAIT_COUNT COUNT1
    mov dx, REQ
    mov al, 2                         ; harness: MSI vector 0x40 to APIC 0
    out dx, al
    WAIT_COUNT COUNT2
    cli
    mov si, msg
    call puts16
    EXIT 0
.halt:
    hlt
    jmp .halt

irq1:
    push ax
    inc dword [COUNT1]
    mov al, 0x20                      ; 8259 EOI
    out 0x20, al
    pop ax
    iret

msi:
    push eax
    push ecx
    push edx
    inc dword [COUNT2]
    mov ecx, 0x80b                    ; x2APIC EOI
    xor eax, eax
    xor edx, edx
    wrmsr
    pop edx
    pop ecx
    pop eax
    iret

msg: db "irq msi", 10, 0
%include "puts16.inc"
ROM_END
