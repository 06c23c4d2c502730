/*
 * lazy/curl.c — modeld's stand-ins for libcurl (lazy/lazy.h). The three
 * variadic ones forward the one argument their option takes, typed by the
 * option's number as curl.h defines it (CURLOPTTYPE_*).
 */
/* curl.h would otherwise turn these names into type-checking macros */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt

#include "lazy/lazy.h"

#include <stdarg.h>

#define CURL_FUNCS(F, V, H) \
	V(curl_easy_cleanup, (CURL *curl), (curl)) \
	F(char *, curl_easy_escape, \
	  (CURL *handle, const char *string, int length), (handle, string, length)) \
	H(curl_easy_getinfo) \
	F(CURL *, curl_easy_init, (void), ()) \
	F(CURLcode, curl_easy_pause, (CURL *handle, int bitmask), (handle, bitmask)) \
	F(CURLcode, curl_easy_perform, (CURL *curl), (curl)) \
	V(curl_easy_reset, (CURL *curl), (curl)) \
	H(curl_easy_setopt) \
	F(const char *, curl_easy_strerror, (CURLcode code), (code)) \
	V(curl_free, (void *p), (p)) \
	F(time_t, curl_getdate, (const char *p, const time_t *unused), (p, unused)) \
	F(CURLcode, curl_global_init, (long flags), (flags)) \
	F(CURLMcode, curl_multi_add_handle, \
	  (CURLM *multi_handle, CURL *curl_handle), (multi_handle, curl_handle)) \
	F(CURLMcode, curl_multi_cleanup, (CURLM *multi_handle), (multi_handle)) \
	F(CURLMsg *, curl_multi_info_read, \
	  (CURLM *multi_handle, int *msgs_in_queue), (multi_handle, msgs_in_queue)) \
	F(CURLM *, curl_multi_init, (void), ()) \
	F(CURLMcode, curl_multi_perform, \
	  (CURLM *multi_handle, int *running_handles), (multi_handle, running_handles)) \
	F(CURLMcode, curl_multi_poll, \
	  (CURLM *multi_handle, struct curl_waitfd extra_fds[], unsigned int extra_nfds, \
	   int timeout_ms, int *ret), \
	  (multi_handle, extra_fds, extra_nfds, timeout_ms, ret)) \
	F(CURLMcode, curl_multi_remove_handle, \
	  (CURLM *multi_handle, CURL *curl_handle), (multi_handle, curl_handle)) \
	H(curl_multi_setopt) \
	F(CURLMcode, curl_multi_wakeup, (CURLM *multi_handle), (multi_handle)) \
	F(struct curl_slist *, curl_slist_append, \
	  (struct curl_slist *list, const char *data), (list, data)) \
	V(curl_slist_free_all, (struct curl_slist *list), (list)) \
	F(CURLU *, curl_url, (void), ()) \
	V(curl_url_cleanup, (CURLU *handle), (handle)) \
	F(CURLUcode, curl_url_get, \
	  (CURLU *handle, CURLUPart what, char **part, unsigned int flags), \
	  (handle, what, part, flags)) \
	F(CURLUcode, curl_url_set, \
	  (CURLU *handle, CURLUPart what, const char *part, unsigned int flags), \
	  (handle, what, part, flags))

#define LAZY_VAR lazy_curl
LAZY_LIBRARY("libcurl.so.4", CURL_FUNCS)

/* libcurl reads the argument of option OPT as a long, an object pointer, a
 * function pointer, a curl_off_t or a blob pointer, by OPT's range; the easy
 * and the multi options share the ranges. */
#define FORWARD_OPTION(fn, h, opt, ap)                                        \
	((opt) < CURLOPTTYPE_OBJECTPOINT     ? fn(h, opt, va_arg(ap, long))   \
	 : (opt) < CURLOPTTYPE_FUNCTIONPOINT ? fn(h, opt, va_arg(ap, void *)) \
	 : (opt) < CURLOPTTYPE_OFF_T ? fn(h, opt, va_arg(ap, void (*)(void)))   \
	 : (opt) < CURLOPTTYPE_BLOB  ? fn(h, opt, va_arg(ap, curl_off_t))       \
				     : fn(h, opt, va_arg(ap, void *)))

CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
	va_list ap;
	va_start(ap, option);
	CURLcode rc = FORWARD_OPTION(LAZY_FN(curl_easy_setopt), curl, option, ap);
	va_end(ap);
	return rc;
}

CURLMcode curl_multi_setopt(CURLM *multi_handle, CURLMoption option, ...)
{
	va_list ap;
	va_start(ap, option);
	CURLMcode rc = FORWARD_OPTION(LAZY_FN(curl_multi_setopt), multi_handle, option, ap);
	va_end(ap);
	return rc;
}

/* every CURLINFO_* takes a pointer to where the answer goes */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
	va_list ap;
	va_start(ap, info);
	CURLcode rc = LAZY_FN(curl_easy_getinfo)(curl, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
