# Process tests for sharehub-agent (tests/integration/test_agent.c): a real
# broker and real agent processes. Included from this directory's
# CMakeLists.txt once the agent and the broker build.
if(TARGET sharehub-agent AND TARGET sharehub-broker AND TARGET shub_agent
   AND TARGET shub_transport)
    add_executable(test_agent_process test_agent.c harness.c)
    target_link_libraries(test_agent_process PRIVATE shub_agent shub_transport
                          PkgConfig::SQLITE PkgConfig::CMOCKA)
    target_compile_definitions(test_agent_process PRIVATE SHUB_FIXTURES="${SHUB_FIXTURES}"
                               SHUB_BUILD_DIR="${PROJECT_BINARY_DIR}")
    add_test(NAME integration.agent COMMAND test_agent_process)
    set_tests_properties(integration.agent PROPERTIES LABELS integration TIMEOUT 300)
endif()
