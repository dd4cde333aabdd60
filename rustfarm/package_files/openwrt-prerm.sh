#!/bin/sh
# Stop and disable the service before its files go.
[ -n "$IPKG_INSTROOT" ] && exit 0
/etc/init.d/@NAME@ stop
/etc/init.d/@NAME@ disable
exit 0
