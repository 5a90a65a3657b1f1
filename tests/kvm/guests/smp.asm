; Guest (e): two vCPUs. The BSP enables its local APIC and wakes the AP with
; INIT-SIPI-SIPI (SIPI vector 0xF1 -> the trampoline at 0xF1000 in the ROM alias).
; The AP prints "AP<id>\n" from LAPIC register 0x20 (an 'X' when CPUID.1:EBX[31:24]
; disagrees), raises a flag in RAM; the BSP waits for it, prints "BSP<id>\n" and
; exits with status 0.
%include "rom.inc"
%include "pm_entry.inc"
%define LAPIC 0xfee00000
%define FLAG  0x600

bits 32
pm_main:
    mov dword [FLAG], 0
    mov dword [LAPIC + 0xf0], 0x1ff          ; SVR: APIC software-enabled
    mov dword [LAPIC + 0x310], 1 << 24       ; ICR high: destination APIC ID 1
    mov dword [LAPIC + 0x300], 0x00004500    ; INIT, level assert
    mov dword [LAPIC + 0x300], 0x00004600 | (ap_start - $$) >> 12 | 0xf0
    mov dword [LAPIC + 0x300], 0x00004600 | (ap_start - $$) >> 12 | 0xf0
.wait:
    pause
    cmp dword [FLAG], 1
    jne .wait
    mov esi, ROM_LIN(bsp_msg)
    call put_id
    EXIT 0
.halt:
    hlt
    jmp .halt

; Print the string at ESI, this CPU's APIC ID in hex, a newline.
put_id:
    mov dx, SERIAL
.next:
    lodsb
    test al, al
    jz .id
    out dx, al
    jmp .next
.id:
    mov ebx, [LAPIC + 0x20]
    shr ebx, 24
    mov eax, 1
    push ebx
    cpuid
    pop eax
    mov dx, SERIAL                           ; cpuid clobbered it
    shr ebx, 24
    cmp eax, ebx
    je .same
    mov al, 'X'
    out dx, al
.same:
    and eax, 0xf
    add al, '0'
    cmp al, '9'
    jbe .digit
    add al, 'a' - '9' - 1
.digit:
    out dx, al
    mov al, 10
    out dx, al
    ret

bsp_msg: db "BSP", 0
ap_msg: db "AP", 0

ap_pm:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x9000
    mov esi, ROM_LIN(ap_msg)
    call put_id
    mov dword [FLAG], 1
.halt:
    cli
    hlt
    jmp .halt

; The AP starts here in real mode with CS = 0xF100, IP = 0.
    times 0x1000 - ($ - $$) db 0
bits 16
ap_start:
    cli
    o32 lgdt [cs:ap_gdt_ptr - ap_start]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword 0x08:ROM_LIN(ap_pm)
; The BSP's gdt_ptr lies below this CS base, out of reach: a copy.
ap_gdt_ptr:
    dw gdt_end - gdt - 1
    dd ROM_LIN(gdt)

ROM_END
