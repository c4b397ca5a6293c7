#!/bin/sh
# extract.sh GUIDE.md NAME - print the C block marked "<!-- file: NAME -->" in GUIDE.md,
# exactly as printed (the fence lines excluded).  Fails if there is no such block, or if
# it is empty or unterminated, so a renamed block cannot silently test nothing.
set -u
[ $# -eq 2 ] || { echo "usage: extract.sh GUIDE.md NAME" >&2; exit 2; }
awk -v want="<!-- file: $2 -->" '
	state == 0 && $0 == want { state = 1; next }
	state == 1 { if ($0 ~ /^```c[ \t]*$/) { state = 2; next } else exit 3 }
	state == 2 && /^```[ \t]*$/ { state = 3; exit }
	state == 2 { print; n++ }
	END {
		if (state != 3 || n == 0) {
			printf "extract.sh: no complete ```c block after \"%s\"\n", want > "/dev/stderr"
			exit 1
		}
	}
' "$1"
