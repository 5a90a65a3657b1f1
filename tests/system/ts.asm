; System test: task-switch checks that raise #TS. A far JMP to an available 32-bit TSS
; whose limit is below 0x67 must fault with #TS(TSS selector) before any state is saved
; (SDM vol.3 7.3, JMP in vol.2). Kept apart from exc.asm: the soft engine does not
; implement task switches yet.
%include "sys.inc"

test_main:
    PRINTLN "task switch"
    PRINT "#TS far jump to a TSS with limit 0x20: "
    TRY .ts_done
    EXPECT_AT .ts
.ts:
    jmp SEL_TSS_SHORT:0
    PRINTLN "no fault"
.ts_done:
    PRINT "#GP far jump to the busy current TSS: "
    TRY .busy_done
    EXPECT_AT .busy
.busy:
    jmp SEL_TSS:0
    PRINTLN "no fault"
.busy_done:
    ret
