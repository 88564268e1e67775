#!/bin/bash
# The shadow variable API of lpshim.ko, call by call: upstream's test-shadow-vars.sh "basic shadow
# variable API" with test_lpshim_shadow_vars.ko (tests/kmod/shadow), plus a failing constructor.
# lpshim then unloads with no variable left (a leftover would WARN, and the rig fails on a WARN).
. "$(dirname "$0")/../lib.sh"

insmod "$(module_path lpshim)"

kmsg_mark
insmod "$(module_path test_lpshim_shadow_vars)"
expect_kmsg '^test_lpshim_shadow_vars:' <<'EOF_KMSG'
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR1, id=0x1234) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
test_lpshim_shadow_vars: shadow_ctor: PTR5 -> PTR4
test_lpshim_shadow_vars: lpshim_shadow_get_or_alloc(obj=PTR1, id=0x1234, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR7) = PTR5
test_lpshim_shadow_vars: shadow_ctor: PTR9 -> PTR8
test_lpshim_shadow_vars: lpshim_shadow_alloc(obj=PTR1, id=0x1235, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR10) = PTR9
test_lpshim_shadow_vars: shadow_ctor: PTR12 -> PTR11
test_lpshim_shadow_vars: lpshim_shadow_alloc(obj=PTR2, id=0x1234, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR13) = PTR12
test_lpshim_shadow_vars: shadow_ctor: PTR15 -> PTR14
test_lpshim_shadow_vars: lpshim_shadow_alloc(obj=PTR2, id=0x1235, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR16) = PTR15
test_lpshim_shadow_vars: shadow_ctor: PTR18 -> PTR17
test_lpshim_shadow_vars: lpshim_shadow_get_or_alloc(obj=PTR3, id=0x1234, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR19) = PTR18
test_lpshim_shadow_vars: shadow_ctor: PTR21 -> PTR20
test_lpshim_shadow_vars: lpshim_shadow_alloc(obj=PTR3, id=0x1235, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR22) = PTR21
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR1, id=0x1234) = PTR5
test_lpshim_shadow_vars:   got expected PTR5 -> PTR4 result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR1, id=0x1235) = PTR9
test_lpshim_shadow_vars:   got expected PTR9 -> PTR8 result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR2, id=0x1234) = PTR12
test_lpshim_shadow_vars:   got expected PTR12 -> PTR11 result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR2, id=0x1235) = PTR15
test_lpshim_shadow_vars:   got expected PTR15 -> PTR14 result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR3, id=0x1234) = PTR18
test_lpshim_shadow_vars:   got expected PTR18 -> PTR17 result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR3, id=0x1235) = PTR21
test_lpshim_shadow_vars:   got expected PTR21 -> PTR20 result
test_lpshim_shadow_vars: lpshim_shadow_get_or_alloc(obj=PTR1, id=0x1234, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR23) = PTR5
test_lpshim_shadow_vars:   got expected PTR5 -> PTR4 result
test_lpshim_shadow_vars: lpshim_shadow_get_or_alloc(obj=PTR2, id=0x1234, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR24) = PTR12
test_lpshim_shadow_vars:   got expected PTR12 -> PTR11 result
test_lpshim_shadow_vars: lpshim_shadow_get_or_alloc(obj=PTR3, id=0x1234, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR25) = PTR18
test_lpshim_shadow_vars:   got expected PTR18 -> PTR17 result
test_lpshim_shadow_vars: shadow_dtor(obj=PTR1, shadow_data=PTR5)
test_lpshim_shadow_vars: lpshim_shadow_free(obj=PTR1, id=0x1234, dtor=PTR26)
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR1, id=0x1234) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
test_lpshim_shadow_vars: shadow_dtor(obj=PTR2, shadow_data=PTR12)
test_lpshim_shadow_vars: lpshim_shadow_free(obj=PTR2, id=0x1234, dtor=PTR26)
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR2, id=0x1234) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
test_lpshim_shadow_vars: shadow_dtor(obj=PTR3, shadow_data=PTR18)
test_lpshim_shadow_vars: lpshim_shadow_free(obj=PTR3, id=0x1234, dtor=PTR26)
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR3, id=0x1234) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR1, id=0x1235) = PTR9
test_lpshim_shadow_vars:   got expected PTR9 -> PTR8 result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR2, id=0x1235) = PTR15
test_lpshim_shadow_vars:   got expected PTR15 -> PTR14 result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR3, id=0x1235) = PTR21
test_lpshim_shadow_vars:   got expected PTR21 -> PTR20 result
test_lpshim_shadow_vars: lpshim_shadow_free_all(id=0x1235, dtor=PTR0)
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR1, id=0x1235) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR2, id=0x1235) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR3, id=0x1235) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
test_lpshim_shadow_vars: shadow_ctor: no field given, refusing
test_lpshim_shadow_vars: lpshim_shadow_alloc(obj=PTR1, id=0x1234, size=8, gfp_flags=GFP_KERNEL, ctor=PTR6, ctor_data=PTR0) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
test_lpshim_shadow_vars: lpshim_shadow_get(obj=PTR1, id=0x1234) = PTR0
test_lpshim_shadow_vars:   got expected NULL result
EOF_KMSG
# lpshim reports the refused constructor (%p is hashed: any pointer).
expect_match "$(kmsg_since_mark | grep -E '^lpshim:' || true)" \
	'^lpshim: Failed to construct shadow variable <[^,]+, 1234> \(-22\)$' \
	"lpshim reports the failed constructor, and nothing else"

kmsg_mark
rmmod test_lpshim_shadow_vars
rmmod lpshim
expect_kmsg '^lpshim:' <<<'lpshim: unloaded'
[[ ! -e /sys/module/lpshim ]] || fail "lpshim is still listed after rmmod"
ok "lpshim unloads with no shadow variable left"
