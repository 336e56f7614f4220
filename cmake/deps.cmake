# Dependencies, all from Debian 12 packages through pkg-config
# (scripts/setup-deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZMQ REQUIRED IMPORTED_TARGET libzmq>=4.3)
pkg_check_modules(MSGPACK REQUIRED IMPORTED_TARGET msgpack)
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
# PostgreSQL's client library: the store's second backend (postgresql:// URIs).
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd>=0.9.75)
if(BUILD_TESTING)
    pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()

# CURVE is not optional: every connection is encrypted and authenticated by
# key. A libzmq built without it would run, unencrypted, and that must not be
# possible, so refuse to configure.
include(CheckCSourceRuns)
set(CMAKE_REQUIRED_INCLUDES ${ZMQ_INCLUDE_DIRS})
set(CMAKE_REQUIRED_LIBRARIES ${ZMQ_LINK_LIBRARIES})
check_c_source_runs([=[
#include <zmq.h>
int main(void) { return zmq_has("curve") ? 0 : 1; }
]=] SHUB_ZMQ_HAS_CURVE)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_LIBRARIES)
if(NOT SHUB_ZMQ_HAS_CURVE)
    message(FATAL_ERROR "libzmq ${ZMQ_VERSION} was built without CURVE security "
                        "(zmq_has(\"curve\") is false); sharehub requires it. "
                        "Install Debian's libzmq3-dev, which is built with libsodium.")
endif()
