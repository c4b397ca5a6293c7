#!/bin/sh
# compare-maps.sh TOOL LOG LABEL OUTDIR - does the picture of block LABEL show the kernel's
# serial map?  Compares the rows mmpicture --text draws from the lmm-map block with the
# plain map rows (mm_map=0) the kernel printed after it.  Exit 0 if identical, else prints
# the difference; leaves OUTDIR/kernel-LABEL.txt and OUTDIR/tool-LABEL.txt.

set -u
tool=$1 log=$2 label=$3 out=$4
# The kernel's rows: from its "memory map (LABEL): ..." line to the legend.
tr -d '\r' <"$log" | sed -n "/^memory map ($label): /,/^legend:/p" | grep '^0x' >"$out/kernel-$label.txt"
"$tool" --text "$log" | sed -n "/^memory map ($label):\$/,/^memory map (/p" | grep '^0x' >"$out/tool-$label.txt"
if [ ! -s "$out/kernel-$label.txt" ]; then
	echo "compare-maps: no plain map rows for '$label' in $log (booted with mm_map=1?)"
	exit 1
fi
if ! cmp -s "$out/kernel-$label.txt" "$out/tool-$label.txt"; then
	diff "$out/kernel-$label.txt" "$out/tool-$label.txt" | head -n 20
	exit 1
fi
exit 0
