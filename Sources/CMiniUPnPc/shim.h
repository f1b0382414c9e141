#ifndef WEBSEED_CMINIUPNPC_SHIM_H
#define WEBSEED_CMINIUPNPC_SHIM_H
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <stdlib.h>
#include <string.h>

/* One Internet Gateway Device found by discovery: its URLs, service and our LAN address. */
typedef struct {
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lanaddr[64];
} ws_igd;

/* SSDP discovery (delay_ms for answers; multicast on the default route's interface), then
   the first valid IGD among the answers. Returns -1 when no device answered, else what
   UPNP_GetValidIGD returns (0 none usable, 1 connected IGD, 2 IGD not connected, 3 a UPnP
   device that is no IGD). *devices receives how many devices answered. */
static inline int ws_igd_discover(ws_igd *igd, int delay_ms, int *devices) {
    int error = 0;
    memset(igd, 0, sizeof *igd);
    *devices = 0;
    struct UPNPDev *list = upnpDiscover(delay_ms, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &error);
    if (!list) return -1;
    for (struct UPNPDev *d = list; d; d = d->pNext) (*devices)++;
    int r = UPNP_GetValidIGD(list, &igd->urls, &igd->data, igd->lanaddr, sizeof igd->lanaddr);
    freeUPNPDevlist(list);
    return r;
}

static inline const char *ws_igd_control_url(const ws_igd *igd) { return igd->urls.controlURL ? igd->urls.controlURL : ""; }
static inline const char *ws_igd_root_url(const ws_igd *igd) { return igd->urls.rootdescURL ? igd->urls.rootdescURL : ""; }
static inline const char *ws_igd_service_type(const ws_igd *igd) { return igd->data.first.servicetype; }
static inline void ws_igd_free(ws_igd *igd) { FreeUPNPUrls(&igd->urls); memset(&igd->urls, 0, sizeof igd->urls); }
#endif
