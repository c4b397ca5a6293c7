#!/bin/sh
# symbolize.sh ELF [LOG] - name the call sites of lmm_dump_holders() lines in a serial log.
#
# The kernel prints holder records with the caller's return address (mm/ keeps no symbol
# table); this appends "function (file:line)" from the kernel ELF with addr2line
# (binutils) to each "caller 0x..." of a holders line.  Reads LOG or standard input.
set -u
elf=${1:?usage: symbolize.sh ELF [LOG]}
[ -f "$elf" ] || { echo "symbolize.sh: no ELF at $elf" >&2; exit 1; }
command -v addr2line >/dev/null 2>&1 || { echo "symbolize.sh: addr2line missing (apt-get install binutils)" >&2; exit 1; }
shift
cat "$@" | while IFS= read -r line; do
	case $line in
	*"lmm:  "*" blocks  caller 0x"*)
		addr=$(echo "$line" | sed -E 's/.*caller (0x[0-9a-f]+).*/\1/')
		where=$(addr2line -f -s -e "$elf" "$addr" | paste -sd' ' | sed -E 's/^([^ ]+) (.*)$/\1 (\2)/')
		printf '%s  <- %s\n' "$line" "$where"
		;;
	*) printf '%s\n' "$line" ;;
	esac
done
