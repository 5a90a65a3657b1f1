; System test: long mode (4-level paging). #PF error codes and CR2 (not-present, WP=1,
; NX fetch, reserved bit 51), ring 0 -> 3 by IRETQ, SYSCALL/SYSRET round trip, INT 0x80
; through a DPL3 gate onto TSS.RSP0, #GP from ring 3 HLT, #BP through an IST gate.
; The 32-bit frame of sys.inc starts us; from here on everything is 64-bit.
%include "sys.inc"

%define PML4 SCRATCH
%define PDPT (SCRATCH + 0x1000)
%define PDIR (SCRATCH + 0x2000)
%define PT2 (SCRATCH + 0x3000)          ; 0x400000..0x5fffff in 4 KiB pages
%define IDT64 (SCRATCH + 0x8000)
%define TSS64 (SCRATCH + 0x9000)
%define DATA_PAGE 0x240000
%define CODE_PAGE 0x241000              ; holds a ret

%define L_CODE0 0x08
%define L_DATA0 0x10
%define L_DATA3 0x23
%define L_CODE3 0x2b
%define L_TSS 0x30

%macro P64 1
    jmp %%after
%%s: db %1, 0
%%after:
    push rsi
    lea rsi, [rel %%s]
    call puts64
    pop rsi
%endmacro
%macro H64 1                            ; low 32 bits as 8 hex digits
    push rax
    mov rax, %1
    call puthex64
    pop rax
%endmacro
%macro TRY64 1
    mov qword [resume64_rip], %1
    mov [resume64_rsp], rsp
%endmacro
%macro MARK64 1
    mov qword [mark64], %1
%endmacro

bits 32
test_main:
    PRINTLN "long mode"
    mov dword [DATA_PAGE], 0x11111111
    mov byte [CODE_PAGE], 0xc3
    mov edi, SCRATCH
    mov ecx, 0x4000 / 4
    xor eax, eax
    rep stosd
    mov dword [PML4], PDPT | 7
    mov dword [PDPT], PDIR | 7
    mov dword [PDIR], 0x000000 | 0x87   ; 2 MiB identity pages, user, writable
    mov dword [PDIR + 8], 0x200000 | 0x87
    mov dword [PDIR + 16], PT2 | 7
    mov dword [PT2], DATA_PAGE | 7      ; 0x400000 data
    mov dword [PT2 + 8], 0              ; 0x401000 not present
    mov dword [PT2 + 16], DATA_PAGE | 5 ; 0x402000 read-only
    mov dword [PT2 + 24], CODE_PAGE | 7 ; 0x403000 NX
    mov dword [PT2 + 28], 0x80000000
    mov dword [PT2 + 32], DATA_PAGE | 7 ; 0x404000 reserved bit 51
    mov dword [PT2 + 36], 0x00080000
    mov dword [PT2 + 40], CODE_PAGE | 7 ; 0x405000 executable
    ; 64-bit TSS: RSP0, IST1, no I/O bitmap (ring 3 runs with IOPL 3)
    mov dword [TSS64 + 4], STACK0_TOP
    mov dword [TSS64 + 0x24], STACK_IST_TOP
    mov word [TSS64 + 102], 104
    lgdt [gdt64_desc]
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, PML4
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, 0x901                       ; SCE, LME, NXE
    wrmsr
    mov eax, cr0
    or eax, 0x80010000                  ; PG, WP
    mov cr0, eax
    jmp L_CODE0:lm_entry

bits 64
lm_entry:
    mov ax, L_DATA0
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, STACK_BOOT_TOP
    ; TSS descriptor (16 bytes) and IDT
    mov rax, TSS64
    mov word [gdt64 + L_TSS], 103
    mov [gdt64 + L_TSS + 2], ax
    shr rax, 16
    mov [gdt64 + L_TSS + 4], al
    mov byte [gdt64 + L_TSS + 5], 0x89
    mov [gdt64 + L_TSS + 7], ah
    mov ax, L_TSS
    ltr ax
    xor ebx, ebx
.gates:
    mov rax, [exc64_stubs + rbx * 8]
    mov ecx, 0x8e00
    call idt64_set
    inc ebx
    cmp ebx, 32
    jb .gates
    mov ebx, 3
    mov rax, [exc64_stubs + 3 * 8]
    mov ecx, 0x8e01                     ; #BP on IST1
    call idt64_set
    mov ebx, 0x80
    lea rax, [rel int80_64]
    mov ecx, 0xee00                     ; DPL3
    call idt64_set
    lidt [idt64_desc]
    ; SYSCALL: CS 0x08 / SS 0x10; SYSRET: CS 0x28|3 / SS 0x20|3; IF masked
    mov ecx, 0xc0000081
    xor eax, eax
    mov edx, 0x00180008
    wrmsr
    mov ecx, 0xc0000082
    lea rax, [rel syscall_entry]
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, 0xc0000084
    mov eax, 0x200
    xor edx, edx
    wrmsr

    P64 {"read 0x400000: "}
    H64 [0x400000]
    call nl64
    P64 {"read not-present: "}
    TRY64 .f1
    MARK64 .a1
.a1:
    mov eax, [0x401008]
    P64 {"no fault", 10}
.f1:
    P64 {"write read-only, WP=1: "}
    TRY64 .f2
    MARK64 .a2
.a2:
    mov dword [0x402010], 1
    P64 {"no fault", 10}
.f2:
    P64 {"call NX page: "}
    TRY64 .f3
    MARK64 0x403000
    mov eax, 0x403000
    call rax
    P64 {"returned", 10}
.f3:
    P64 {"call executable page: "}
    TRY64 .f4
    mov eax, 0x405000
    call rax
    P64 {"returned", 10}
.f4:
    P64 {"read reserved bit 51: "}
    TRY64 .f5
    MARK64 .a5
.a5:
    mov eax, [0x404000]
    P64 {"no fault", 10}
.f5:
    P64 {"INT3 through an IST gate: "}
    TRY64 .f6
    MARK64 .a6
.a6:
    int3
    P64 {"no trap", 10}
.f6:
    P64 {"IRETQ to ring 3: "}
    TRY64 .f7
    push L_DATA3
    push STACK3_TOP
    push 0x3002                         ; IOPL 3, IF 0
    push L_CODE3
    lea rax, [rel .ring3]
    push rax
    iretq
.ring3:
    P64 {"cs="}
    mov ax, cs
    movzx eax, ax
    H64 rax
    call nl64
    P64 {"SYSCALL: "}
    mov rax, 0x1234
    syscall
    P64 {"after SYSRET cs="}
    mov ax, cs
    movzx eax, ax
    H64 rax
    P64 {" ss="}
    mov ax, ss
    movzx eax, ax
    H64 rax
    call nl64
    P64 {"INT 0x80: "}
    int 0x80
    P64 {"ring 3 HLT: "}
    MARK64 .a8
.a8:
    hlt
    P64 {"no fault", 10}
.f7:
    P64 {"end", 10}
    mov al, EXIT_VALUE
    out TEST_EXIT, al
.halt:
    cli
    hlt
    jmp .halt

syscall_entry:                          ; ring 0, RSP still the user's
    P64 {"cpl0 cs="}
    push rax
    mov ax, cs
    movzx eax, ax
    H64 rax
    pop rax
    P64 {" rax="}
    H64 rax
    P64 {" rcx=ret "}
    lea rdx, [rel .back]
    lea rdi, [rel lm_entry.ring3]
    cmp rcx, rdi
    jb .bad
    P64 {"ok"}
.back:
    P64 {" r11.if="}
    mov rax, r11
    shr rax, 9
    and eax, 1
    H64 rax
    call nl64
    o64 sysret
.bad:
    P64 {"wrong"}
    jmp .back

int80_64:                               ; DPL3 gate: ring 0 on TSS.RSP0
    push rbp
    mov rbp, rsp                        ; [rbp + 8] RIP, CS, RFLAGS, RSP, SS
    P64 {"from cs="}
    H64 [rbp + 16]
    P64 {" ss="}
    H64 [rbp + 40]
    P64 {" rsp0 frame "}
    lea rax, [rbp + 48]
    cmp rax, STACK0_TOP
    jne .bad
    P64 {"ok", 10}
    pop rbp
    iretq
.bad:
    P64 {"wrong", 10}
    pop rbp
    iretq

; ---- exceptions --------------------------------------------------------------------------
%assign v 0
%rep 32
exc64_stub_ %+ v:
%if v = 8 || v = 10 || v = 11 || v = 12 || v = 13 || v = 14 || v = 17
    push qword v
%else
    push qword 0
    push qword v
%endif
    jmp exc64_common
%assign v v + 1
%endrep
align 8
exc64_stubs:
%assign v 0
%rep 32
    dq exc64_stub_ %+ v
%assign v v + 1
%endrep

exc64_common:                           ; [rsp] vector, error, RIP, CS, RFLAGS, RSP, SS
    mov rbp, rsp
    P64 {"exc "}
    H64 [rbp]
    P64 {" err "}
    H64 [rbp + 8]
    P64 {" at +"}
    mov rax, [rbp + 16]
    sub rax, [mark64]
    H64 rax
    P64 {" cpl "}
    mov rax, [rbp + 24]
    and eax, 3
    H64 rax
    P64 {" stack "}
    lea rax, [rbp + 56]
    cmp rax, STACK_IST_TOP
    je .ist
    cmp rax, STACK0_TOP
    je .rsp0
    P64 {"same"}
    jmp .cr2
.ist:
    P64 {"IST1"}
    jmp .cr2
.rsp0:
    P64 {"RSP0"}
.cr2:
    cmp qword [rbp], 14
    jne .done
    P64 {" cr2 "}
    mov rax, cr2
    H64 rax
.done:
    call nl64
    mov rsp, [resume64_rsp]
    jmp [resume64_rip]

idt64_set:                              ; EBX vector, RAX handler, ECX type/attr/IST word
    lea rdi, [IDT64 + rbx * 8]
    lea rdi, [rdi + rbx * 8]
    mov [rdi], ax
    mov word [rdi + 2], L_CODE0
    mov [rdi + 4], cx
    shr rax, 16
    mov [rdi + 6], ax
    shr rax, 16
    mov [rdi + 8], eax
    mov dword [rdi + 12], 0
    ret

puts64:                                 ; RSI
    push rax
    push rsi
.next:
    lodsb
    test al, al
    jz .done
    out DEBUGCON, al
    jmp .next
.done:
    pop rsi
    pop rax
    ret
nl64:
    push rax
    mov al, 10
    out DEBUGCON, al
    pop rax
    ret
puthex64:                               ; EAX as 8 hex digits
    push rax
    push rbx
    push rcx
    push rdx
    mov ecx, 8
    mov ebx, eax
.next:
    rol ebx, 4
    mov eax, ebx
    and eax, 0xf
    lea rdx, [rel hexdigits]
    mov al, [rdx + rax]
    out DEBUGCON, al
    dec ecx
    jnz .next
    pop rdx
    pop rcx
    pop rbx
    pop rax
    ret

align 8
resume64_rip: dq 0
resume64_rsp: dq 0
mark64: dq 0
gdt64:
    dq 0
    dq 0x00AF9A000000FFFF               ; 0x08 64-bit code, DPL0
    dq 0x00CF92000000FFFF               ; 0x10 data, DPL0
    dq 0x00CFFA000000FFFF               ; 0x18 32-bit code, DPL3 (SYSRET base)
    dq 0x00CFF2000000FFFF               ; 0x20 data, DPL3
    dq 0x00AFFA000000FFFF               ; 0x28 64-bit code, DPL3
    dq 0, 0                             ; 0x30 64-bit TSS (filled in)
gdt64_end:
gdt64_desc:
    dw gdt64_end - gdt64 - 1
    dq gdt64
idt64_desc:
    dw 256 * 16 - 1
    dq IDT64
