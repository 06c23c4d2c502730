/*
 * lazy/mhd.c — modeld's stand-ins for libmicrohttpd (lazy/lazy.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "lazy/lazy.h"

#define MHD_FUNCS(F, V, H) \
	F(enum MHD_Result, MHD_add_response_header, \
	  (struct MHD_Response *response, const char *header, const char *content), \
	  (response, header, content)) \
	F(struct MHD_Response *, MHD_create_response_from_buffer, \
	  (size_t size, void *buffer, enum MHD_ResponseMemoryMode mode), (size, buffer, mode)) \
	F(struct MHD_Response *, MHD_create_response_from_callback, \
	  (uint64_t size, size_t block_size, MHD_ContentReaderCallback crc, void *crc_cls, \
	   MHD_ContentReaderFreeCallback crfc), \
	  (size, block_size, crc, crc_cls, crfc)) \
	F(struct MHD_Response *, MHD_create_response_from_fd_at_offset64, \
	  (uint64_t size, int fd, uint64_t offset), (size, fd, offset)) \
	V(MHD_destroy_response, (struct MHD_Response *response), (response)) \
	F(const char *, MHD_lookup_connection_value, \
	  (struct MHD_Connection *connection, enum MHD_ValueKind kind, const char *key), \
	  (connection, kind, key)) \
	F(enum MHD_Result, MHD_queue_response, \
	  (struct MHD_Connection *connection, unsigned int status_code, \
	   struct MHD_Response *response), \
	  (connection, status_code, response)) \
	H(MHD_start_daemon_va) \
	V(MHD_stop_daemon, (struct MHD_Daemon *daemon), (daemon))

#define LAZY_VAR lazy_mhd
LAZY_LIBRARY("libmicrohttpd.so.12", MHD_FUNCS)

/* the option list goes on as it came, through the library's va_list entry */
struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
				    MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	va_list ap;
	va_start(ap, dh_cls);
	struct MHD_Daemon *d = LAZY_FN(MHD_start_daemon_va)(flags, port, apc, apc_cls, dh, dh_cls,
							     ap);
	va_end(ap);
	return d;
}
