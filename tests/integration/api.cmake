# Process tests for the agent's local API (tests/integration/test_api_*.py):
# a real broker and real agents serving --api, played by the example Python
# client. Included from this directory's CMakeLists.txt.
if(TARGET sharehub-agent AND TARGET sharehub-broker AND TARGET sharehub-keygen)
    find_program(SHUB_PYTHON3 python3 REQUIRED) # scripts/setup-deps.sh installs it
    foreach(name case_system bad_requests)
        add_test(NAME integration.api_${name}
                 COMMAND ${SHUB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/test_api_${name}.py
                         ${PROJECT_BINARY_DIR} ${SHUB_FIXTURES}
                         ${PROJECT_SOURCE_DIR}/examples/python)
        # No __pycache__ in the source tree.
        set_tests_properties(integration.api_${name} PROPERTIES LABELS integration
                             TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
    endforeach()
endif()
