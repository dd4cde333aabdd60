#!/bin/sh
# Enable and start the service on the device (not while an image is being assembled).
[ -n "$IPKG_INSTROOT" ] && exit 0
/etc/init.d/@NAME@ enable
/etc/init.d/@NAME@ start
exit 0
