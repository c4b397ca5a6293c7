/*
 * bytes.h - little-endian loads from untrusted byte buffers, for the boot-data parsers
 * (multiboot2.c, acpi.c).  Byte-wise through memcpy, so a field at an odd offset never
 * makes an unaligned wide load (UBSan rejects those on the host).  Freestanding.
 */
#ifndef LABYRINTH_KERNEL_BYTES_H
#define LABYRINTH_KERNEL_BYTES_H

#include <stdint.h>

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

#endif /* LABYRINTH_KERNEL_BYTES_H */
