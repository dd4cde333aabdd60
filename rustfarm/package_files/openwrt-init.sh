#!/bin/sh /etc/rc.common
# @NAME@: started by procd, restarted when it exits (made by the farm's release).
# shellcheck disable=SC2034  # START and USE_PROCD are read by /etc/rc.common
START=95
USE_PROCD=1

start_service() {
	procd_open_instance
	procd_set_param command @COMMAND@
	procd_set_param respawn
	procd_set_param stdout 1
	procd_set_param stderr 1
	procd_close_instance
}
