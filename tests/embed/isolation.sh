#!/bin/sh
# isolation.sh [LIBMM.a] - mm/ is a library: prove it stands alone.
#
#   libmm-includes  every #include in mm/ (and in the two public headers) names one of
#                   the compiler's freestanding headers {stddef,stdint,stdbool,stdatomic,
#                   stdarg}.h, <labyrinth/mm.h>, <labyrinth/mm_port.h>, or a "header"
#                   of mm/'s own: nothing from kernel/, arch/, boot/ or a libc.  The one
#                   exception is mm_port.h's LMM_PORT_INLINE_HEADER: a header the port
#                   names itself, included only when it asks for inline hooks.
#   libmm-symbols   the library's undefined symbols (nm -u, less what it defines itself)
#                   are the twelve lmm_port_* hooks and at most the four functions GCC
#                   requires of every freestanding environment (memcpy, memmove, memset,
#                   memcmp; see mm/README.md section 1), and everything it defines is
#                   named lmm_* or labyrinth_* (no namespace pollution in the host kernel).
#
# Prints one PASS/FAIL line for each; exits 1 if either fails.
set -u
cd "$(dirname "$0")/../.." || exit 1
lib=${1:-${BUILD:-build}/libmm/libmm.a}
NM=${NM:-nm}
failed=0

# ---- includes ------------------------------------------------------------------------
bad=""
for f in mm/*.c mm/*.h include/labyrinth/mm.h include/labyrinth/mm_port.h; do
	[ -e "$f" ] || continue
	# Every line whose first token is #include (any spacing), with its number.
	lines=$(grep -n -E '^[[:space:]]*#[[:space:]]*include' "$f") || continue
	echo "$lines" | while IFS= read -r line; do
		n=${line%%:*}
		what=$(echo "${line#*:}" | sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*//; s/[[:space:]]*(\/[*/].*)?$//')
		case $what in
		'<stddef.h>' | '<stdint.h>' | '<stdbool.h>' | '<stdatomic.h>' | '<stdarg.h>') ;;
		'<labyrinth/mm.h>' | '<labyrinth/mm_port.h>') ;;
		LMM_PORT_INLINE_HEADER)
			[ "$f" = include/labyrinth/mm_port.h ] ||
				echo "$f:$n: $what (only mm_port.h may include the port's inline hooks)"
			;;
		\"*\")
			inner=${what#\"}
			inner=${inner%\"}
			case $inner in
			*/* | *..*) echo "$f:$n: $what (not one of mm/'s own headers)" ;;
			*) [ -f "mm/$inner" ] || echo "$f:$n: $what (no such header in mm/)" ;;
			esac
			;;
		*) echo "$f:$n: $what" ;;
		esac
	done
done >"${TMPDIR:-/tmp}/lmm-isolation.$$"
bad=$(cat "${TMPDIR:-/tmp}/lmm-isolation.$$")
rm -f "${TMPDIR:-/tmp}/lmm-isolation.$$"
if [ -n "$bad" ]; then
	echo "$bad" | sed 's/^/    /'
	echo "FAIL libmm-includes: $(echo "$bad" | head -n 1) is not a freestanding, public or mm/ header"
	failed=1
else
	echo "PASS libmm-includes: mm/ includes only freestanding headers, labyrinth/mm.h, labyrinth/mm_port.h and its own (and the port's LMM_PORT_INLINE_HEADER, if it names one)"
fi

# ---- symbols -----------------------------------------------------------------------------
if [ ! -f "$lib" ]; then
	echo "FAIL libmm-symbols: $lib not built (make libmm)"
	exit 1
fi
allowed=" lmm_port_lock_init lmm_port_lock_irqsave lmm_port_unlock_irqrestore lmm_port_irq_save \
lmm_port_irq_restore lmm_port_irq_save_cpu lmm_port_phys_to_virt lmm_port_context lmm_port_owner \
lmm_port_report lmm_port_log lmm_port_fatal memcpy memmove memset memcmp "
defined=$($NM -g --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sort -u)
undefined=$($NM -u "$lib" | awk 'NF >= 2 { print $2 }' | sort -u |
	while read -r s; do echo "$defined" | grep -qx "$s" || echo "$s"; done)
unexpected=""
for s in $undefined; do
	case $allowed in
	*" $s "*) ;;
	*) unexpected="$unexpected $s" ;;
	esac
done
foreign=""
for s in $defined; do
	case $s in
	lmm_* | labyrinth_*) ;;
	*) foreign="$foreign $s" ;;
	esac
done
list=$(echo "$undefined" | tr '\n' ' ' | sed 's/ $//')
if [ -n "$unexpected" ]; then
	echo "FAIL libmm-symbols: $lib needs symbols no port provides:$unexpected"
	failed=1
elif [ -n "$foreign" ]; then
	echo "FAIL libmm-symbols: $lib defines names outside lmm_*/labyrinth_*:$foreign"
	failed=1
elif [ -z "$list" ]; then
	echo "FAIL libmm-symbols: $lib has no undefined symbols at all (is it empty?)"
	failed=1
else
	echo "PASS libmm-symbols: $lib needs only: $list"
fi
exit "$failed"
