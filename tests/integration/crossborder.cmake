# Cross-border process tests (tests/integration/test_crossborder.c): a real
# broker and real agents running the partnership's own configuration,
# examples/west-midlands, with fresh keys. Included from this directory's
# CMakeLists.txt once the agent, the broker and the audit tool build.
if(TARGET sharehub-agent AND TARGET sharehub-broker AND TARGET sharehub-audit
   AND TARGET sharehub-keygen AND TARGET shub_transport AND TARGET shub_seal)
    get_filename_component(SHUB_WM_EXAMPLES
                           ${CMAKE_CURRENT_LIST_DIR}/../../examples/west-midlands ABSOLUTE)
    add_executable(test_crossborder ${CMAKE_CURRENT_LIST_DIR}/test_crossborder.c
                   ${CMAKE_CURRENT_LIST_DIR}/harness.c)
    target_link_libraries(test_crossborder PRIVATE shub_transport shub_seal
                          PkgConfig::SQLITE PkgConfig::CMOCKA)
    target_compile_definitions(test_crossborder PRIVATE SHUB_EXAMPLES="${SHUB_WM_EXAMPLES}"
                               SHUB_BUILD_DIR="${PROJECT_BINARY_DIR}")
    add_dependencies(test_crossborder sharehub-agent sharehub-broker sharehub-audit
                     sharehub-keygen)
    add_test(NAME integration.crossborder COMMAND test_crossborder)
    set_tests_properties(integration.crossborder PROPERTIES LABELS integration TIMEOUT 600)
endif()
