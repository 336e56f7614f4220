# package: the Debian package, with CPack's DEB generator. Included only
# when SHUB_PACKAGE is on, by scripts/make-deb.sh (`make deb`), which also
# configures the Debian layout: prefix /usr, /etc/sharehub, units in
# /lib/systemd/system, man pages gzip-compressed. The package installs the
# programs, man pages, units and the example /etc/sharehub (its conffiles);
# its postinst makes the sharehub user and the broker's keys, and nothing is
# enabled or started (packaging/debian/).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sharehub)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "information-sharing hub for public-service partners")
set(CPACK_PACKAGE_DESCRIPTION
    "sharehub routes events between the partners of an information-sharing\n\
partnership (police, councils, MARACs, probation, health) under\n\
machine-readable agreements, default deny, keeping a tamper-evident audit\n\
log. This package holds the broker, the agent each partner runs, the audit\n\
tool, keygen, and the systemd units for them, none of them enabled.")
set(SHUB_PACKAGE_MAINTAINER "sharehub maintainers <sharehub@example.org>" CACHE STRING
    "the package's Maintainer: who answers for it")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${SHUB_PACKAGE_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # the libraries' packages, by dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, procps")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "systemd")
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# A native package's changelog, as Debian wants one: the version and the date
# of the build (SOURCE_DATE_EPOCH, when set, makes it reproducible).
string(TIMESTAMP SHUB_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(packaging/debian/changelog.in ${PROJECT_BINARY_DIR}/packaging/debian/changelog
               @ONLY)
find_program(SHUB_GZIP gzip REQUIRED)
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/packaging/debian/changelog.gz
                   COMMAND ${SHUB_GZIP} -9 -n -k -f ${PROJECT_BINARY_DIR}/packaging/debian/changelog
                   DEPENDS ${PROJECT_BINARY_DIR}/packaging/debian/changelog VERBATIM)
add_custom_target(changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/packaging/debian/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/packaging/debian/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# dpkg keeps an administrator's edits to these across upgrades.
set(conffiles ${PROJECT_BINARY_DIR}/packaging/debian/conffiles)
file(WRITE ${conffiles}
     "${CMAKE_INSTALL_FULL_SYSCONFDIR}/sharehub/hub.yaml\n"
     "${CMAKE_INSTALL_FULL_SYSCONFDIR}/sharehub/orgs.yaml\n"
     "${CMAKE_INSTALL_FULL_SYSCONFDIR}/sharehub/agreements/README\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm ${conffiles})
include(CPack)
