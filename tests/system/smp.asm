; System test: two vCPUs. The BSP wakes the AP with INIT-SIPI-SIPI (real-mode trampoline
; at 0x8000), each CPU prints its LAPIC ID, then both add to one counter with LOCK INC;
; the total must be exact.
%include "sys.inc"

%define LAPIC 0xfee00000
%define LAPIC_ID (LAPIC + 0x20)
%define LAPIC_SVR (LAPIC + 0xf0)
%define LAPIC_ICR_LO (LAPIC + 0x300)
%define TRAMPOLINE 0x8000               ; SIPI vector 0x08
%define AP_STACK_TOP 0x21e000
%define LOOPS 20000

test_main:
    PRINTLN "smp"
    mov dword [LAPIC_SVR], 0x1ff
    PRINT "bsp apic id "
    mov eax, [LAPIC_ID]
    shr eax, 24
    call putdigit
    call newline
    mov esi, trampoline
    mov edi, TRAMPOLINE
    mov ecx, trampoline_end - trampoline
    rep movsb
    ; INIT, then SIPI twice, to all but self (MP spec / SDM 8.4.4.1 sequence)
    mov dword [LAPIC_ICR_LO], 0xc4500
    mov eax, PM_HZ / 100
    call pm_wait
    mov dword [LAPIC_ICR_LO], 0xc4600 | (TRAMPOLINE >> 12)
    mov eax, PM_HZ / 1000
    call pm_wait
    mov dword [LAPIC_ICR_LO], 0xc4600 | (TRAMPOLINE >> 12)
    ; wait for the AP to report (up to ~2 s of PM time)
    mov ebx, 200
.wait_ap:
    cmp dword [ap_started], 1
    je .ap_up
    mov eax, PM_HZ / 100
    call pm_wait
    dec ebx
    jnz .wait_ap
    PRINTLN "AP did not start"
    ret
.ap_up:
    mov ecx, LOOPS
.count:
    lock inc dword [counter]
    dec ecx
    jnz .count
.wait_done:
    pause
    cmp dword [ap_done], 1
    jne .wait_done
    PRINT "counter "
    HEX32 [counter]
    PRINT " expected "
    HEX32 2 * LOOPS
    call newline
    ret

; Real-mode entry of the AP, copied to TRAMPOLINE. CS = 0x0800, IP = 0.
bits 16
trampoline:
    cli
    xor ax, ax
    mov ds, ax
    lgdt [TRAMPOLINE + (tramp_gdt_desc - trampoline)]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword SEL_CODE0:ap_main
align 4
tramp_gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt
trampoline_end:
bits 32

ap_main:
    mov ax, SEL_DATA0
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, AP_STACK_TOP
    mov dword [LAPIC_SVR], 0x1ff
    PRINT "ap apic id "
    mov eax, [LAPIC_ID]
    shr eax, 24
    call putdigit
    call newline
    mov dword [ap_started], 1
    mov ecx, LOOPS
.count:
    lock inc dword [counter]
    dec ecx
    jnz .count
    mov dword [ap_done], 1
.halt:
    cli
    hlt
    jmp .halt

align 4
ap_started: dd 0
ap_done: dd 0
counter: dd 0
