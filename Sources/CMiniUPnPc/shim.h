#ifndef WEBSEED_CMINIUPNPC_SHIM_H
#define WEBSEED_CMINIUPNPC_SHIM_H
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#endif
