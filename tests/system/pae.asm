; System test: PAE paging with EFER.NXE: #PF for an instruction fetch from an NX page
; (I/D bit), reserved bits (bit 62 always, bit 63 when NXE=0), a not-present PDPTE,
; accessed/dirty bits of a 2 MiB page, supervisor write to read-only with CR0.WP=1.
%include "sys.inc"

%define PDPT SCRATCH                    ; 4 entries, 32-byte aligned
%define PD (SCRATCH + 0x1000)           ; covers 0..1 GiB
%define PT0 (SCRATCH + 0x2000)          ; identity 0..2 MiB in 4 KiB pages
%define PT2 (SCRATCH + 0x3000)          ; the test pages at 0x400000
%define PAGE_A 0x240000
%define PAGE_B 0x241000
%define PAGE_C 0x242000
%define NX_HI 0x80000000                ; bit 63, in the high dword
%define RSVD62_HI 0x40000000            ; bit 62, in the high dword

%macro SETPTE 3                         ; index in PT2, low dword, high dword
    mov dword [PT2 + (%1) * 8], %2
    mov dword [PT2 + (%1) * 8 + 4], %3
%endmacro

test_main:
    PRINTLN "paging PAE"
    mov dword [PAGE_A], 0x11111111
    mov dword [PAGE_B], 0x000000c3      ; ret
    mov dword [PAGE_C], 0x000000c3
    mov edi, SCRATCH
    mov ecx, 4 * 1024
    xor eax, eax
    rep stosd
    mov edi, PT0
    mov eax, 0x7
.ident:
    mov [edi], eax
    add edi, 8
    add eax, 0x1000
    cmp edi, PT0 + 0x1000
    jb .ident
    mov dword [PDPT], PD | 1
    mov dword [PD], PT0 | 7
    mov dword [PD + 8], 0x200000 | 0x87 ; 2 MiB identity page (IDT, TSS, stacks, tables)
    mov dword [PD + 16], PT2 | 7
    mov dword [PD + 24], 0x000000 | 0x87 ; 0x600000 -> 0, 2 MiB, for the A/D bits
    SETPTE 0, PAGE_A | 7, 0             ; 0x400000 data
    SETPTE 1, PAGE_B | 7, NX_HI         ; 0x401000 NX, holds a ret
    SETPTE 2, PAGE_A | 7, RSVD62_HI     ; 0x402000 reserved bit 62
    SETPTE 3, PAGE_C | 7, 0             ; 0x403000 executable, holds a ret
    SETPTE 4, PAGE_A | 5, 0             ; 0x404000 read-only
    ; EFER.NXE, CR4.PAE, CR3, CR0.PG|WP
    mov ecx, 0xc0000080
    rdmsr
    or eax, 1 << 11
    wrmsr
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, PDPT
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80010000
    mov cr0, eax

    PRINT "read 0x400000: "
    HEX32 [0x400000]
    call newline
    PRINT "call executable page: "
    TRY .f1
    call 0x403000
    PRINTLN "returned"
.f1:
    PRINT "call NX page: "
    TRY .f2
    EXPECT_AT 0x401000
    call 0x401000
    PRINTLN "returned"
.f2:
    PRINT "read NX page: "
    TRY .f3
    HEX32 [0x401000]
    call newline
.f3:
    PRINT "read reserved bit 62: "
    TRY .f4
    EXPECT_AT .a4
.a4:
    mov eax, [0x402010]
    PRINTLN "no fault"
.f4:
    PRINT "write reserved bit 62: "
    TRY .f5
    EXPECT_AT .a5
.a5:
    mov dword [0x402010], 0
    PRINTLN "no fault"
.f5:
    PRINT "CPL0 write read-only, WP=1: "
    TRY .f6
    EXPECT_AT .a6
.a6:
    mov dword [0x404000], 0
    PRINTLN "no fault"
.f6:
    PRINT "CPL3 call NX page: "
    TRY .f7
    RING3 0
    EXPECT_AT 0x401000
    call 0x401000
    PRINTLN "returned"
.f7:
    PRINT "read through a not-present PDPTE: "
    TRY .f8
    EXPECT_AT .a8
.a8:
    mov eax, [0x40000000]
    PRINTLN "no fault"
.f8:
    PRINT "2 MiB PDE flags after read, after write: "
    and dword [PD + 24], ~0x60
    invlpg [0x640000]
    mov eax, [0x640000]
    mov eax, [PD + 24]
    and eax, 0xfff
    HEX32 eax
    PRINT " "
    mov dword [0x640000 + 0x10], 1
    mov eax, [PD + 24]
    and eax, 0xfff
    HEX32 eax
    call newline
    ; NXE off: bit 63 becomes reserved
    mov ecx, 0xc0000080
    rdmsr
    and eax, ~(1 << 11)
    wrmsr
    invlpg [0x401000]
    PRINT "read bit 63 set with NXE=0: "
    TRY .f9
    EXPECT_AT .a9
.a9:
    mov eax, [0x401000]
    PRINTLN "no fault"
.f9:
    PRINT "CR2: "
    mov eax, cr2
    HEX32 eax
    call newline
    mov eax, cr0
    and eax, ~0x80000000
    mov cr0, eax
    ret
