# CMake's toolchain file for every target image (CMAKE_TOOLCHAIN_FILE_<triple>, which
# the cmake crate reads): the target's compilers and archiver, as the cc crate
# finds them (CC_<triple>, CXX_<triple>, AR_<triple>, RANLIB_<triple>).
string(REPLACE "-" "_" rustfarm_suffix "$ENV{RUSTFARM_TARGET}")
string(REGEX REPLACE "-.*" "" rustfarm_arch "$ENV{RUSTFARM_TARGET}")
if("$ENV{RUSTFARM_TARGET}" MATCHES "windows")
  set(CMAKE_SYSTEM_NAME Windows)
else()
  set(CMAKE_SYSTEM_NAME Linux)
endif()
set(CMAKE_SYSTEM_PROCESSOR "${rustfarm_arch}")
set(CMAKE_C_COMPILER "$ENV{CC_${rustfarm_suffix}}")
set(CMAKE_CXX_COMPILER "$ENV{CXX_${rustfarm_suffix}}")
set(CMAKE_AR "$ENV{AR_${rustfarm_suffix}}" CACHE FILEPATH "archiver")
set(CMAKE_RANLIB "$ENV{RANLIB_${rustfarm_suffix}}" CACHE FILEPATH "ranlib")
# Only the target's own headers and libraries, never the build machine's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
