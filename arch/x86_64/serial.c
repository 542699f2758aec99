/*
 * arch/x86_64/serial.c - the console: a 16550 UART at COM1 (I/O port 0x3f8).
 *
 * QEMU's -nographic connects COM1 to stdio.  The UART works without setup
 * in QEMU, but real hardware needs the line configured, so we do the
 * minimal init: 115200 baud, 8 data bits, no parity, 1 stop bit (8N1),
 * FIFOs on, interrupts off.  Output is polled: wait until the transmit
 * holding register is empty (LSR bit 5), then write the byte.
 *
 *   port  0x3f8 +0  THR (write) / divisor low  (when LCR.DLAB = 1)
 *              +1  IER             / divisor high (when LCR.DLAB = 1)
 *              +2  FCR (write)
 *              +3  LCR
 *              +4  MCR
 *              +5  LSR
 */
#include <stdint.h>
#include <kernel/arch.h>
#include "x86.h"

#define COM1      0x3f8
#define UART_THR  0
#define UART_DLL  0
#define UART_IER  1
#define UART_DLM  1
#define UART_FCR  2
#define UART_LCR  3
#define UART_MCR  4
#define UART_LSR  5

#define LCR_8N1   0x03
#define LCR_DLAB  0x80
#define FCR_FIFO  0x07   /* enable, clear RX and TX FIFOs */
#define MCR_DTR_RTS_OUT2 0x0b
#define LSR_THRE  0x20

void x86_serial_init(void)
{
	outb(COM1 + UART_IER, 0x00);              /* no interrupts */
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DLL, 1);                 /* 115200 / 1 */
	outb(COM1 + UART_DLM, 0);
	outb(COM1 + UART_LCR, LCR_8N1);
	outb(COM1 + UART_FCR, FCR_FIFO);
	outb(COM1 + UART_MCR, MCR_DTR_RTS_OUT2);
}

void arch_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THRE))
		;
	outb(COM1 + UART_THR, (uint8_t)c);
}

/* For the few messages printed before kernel/console.c can be trusted
 * (bad boot info, nested faults): raw bytes, "\n" -> "\r\n". */
void x86_serial_puts(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			arch_putc('\r');
		arch_putc(*s);
	}
}
