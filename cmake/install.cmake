# install: what `cmake --install` (and so the Debian package) puts where,
# following GNUInstallDirs: the five programs in bin/, the man pages in
# share/man (docs/CMakeLists.txt), the systemd units, an example
# configuration in etc/sharehub, the licence and README in share/doc.
#
# Paths the installed files name (the units' ExecStart, the example
# hub.yaml's database) are those of the configured prefix: `cmake --install
# --prefix X` moves the files, not what they say. The Debian package is
# configured for /usr, /etc and /lib/systemd/system (cmake/package.cmake).
set(SHUB_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "where the systemd units go: relative to the prefix, or absolute")

foreach(program sharehub-broker sharehub-agent sharehub-audit sharehub-keygen sharehub-wire)
    if(TARGET ${program})
        install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    endif()
endforeach()

set(SHUB_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(packaging ${PROJECT_BINARY_DIR}/packaging)
foreach(unit sharehub-broker.service sharehub-agent@.service)
    configure_file(packaging/systemd/${unit}.in ${packaging}/${unit} @ONLY)
    install(FILES ${packaging}/${unit} DESTINATION ${SHUB_SYSTEMD_UNIT_DIR})
endforeach()

configure_file(packaging/etc/hub.yaml.in ${packaging}/etc/hub.yaml @ONLY)
install(FILES ${packaging}/etc/hub.yaml packaging/etc/orgs.yaml
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/sharehub)
install(FILES packaging/etc/agreements/README
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/sharehub/agreements)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
if(SHUB_PACKAGE) # a Debian package states its licence as doc/PACKAGE/copyright
    install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)
else()
    install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()
