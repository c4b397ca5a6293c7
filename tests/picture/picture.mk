# tests/picture/picture.mk - the picture of physical memory (issue 13).
#
#   make picture         boot the kernel once (256M, PICTURE_CMDLINE), keep its serial log
#                        as build/pictures/serial.log, draw build/pictures/memory-boot.png
#                        and memory-after-stress.png from its lmm-map blocks, and check the
#                        pictures' cells are the serial map's letter for letter
#   make picture-readme  the same, then copy memory-after-stress.png to tests/picture/, the
#                        file the README embeds (regenerated this way, never edited by hand)
#   make picture-tool    build/picture/mmpicture alone (ASan/UBSan, zlib); make test runs
#                        its tests (tests/picture/run-tests.sh)

PICTURE_DIR     := $(BUILD)/pictures
MMPICTURE       := $(BUILD)/picture/mmpicture
# mm_map=0: the plain map in the log is what the pictures are checked against.
PICTURE_CMDLINE ?= mode=demo stress_seconds=2 mm_map=0

.PHONY: picture picture-readme picture-tool tools-picture
picture-tool: $(MMPICTURE)

tools-picture:
	@sh tests/scripts/ensure-tools.sh picture

$(MMPICTURE): tests/picture/mmpicture.c include/labyrinth/*.h | tools-picture
	@mkdir -p $(dir $@)
	$(HOSTCC) $(HOST_COMMON) $(HOSTCFLAGS) $(SAN_FLAGS) -o $@ $< -lz

picture: $(ISO) $(MMPICTURE)
	@sh tests/picture/make-picture.sh --iso $(ISO) --tool $(MMPICTURE) --out $(PICTURE_DIR) \
		--timeout '$(QEMU_TIMEOUT)' --cmdline '$(PICTURE_CMDLINE)'

picture-readme: picture
	cp $(PICTURE_DIR)/memory-after-stress.png tests/picture/memory-after-stress.png
