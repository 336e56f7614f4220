# Fault tests (tests/integration/test_fault_*.c, fault.h): real brokers and
# agents, real ipc sockets and SQLite files, and harm done on purpose. Each
# prints one line of figures. Included from this directory's CMakeLists.txt
# once the broker, the agent and the audit tool build. SHUB_FAULT_SCALE
# (0.01-1, default 1) scales their counts; make asan runs them scaled.
if(TARGET sharehub-broker AND TARGET sharehub-agent AND TARGET sharehub-audit
   AND TARGET shub_agent AND TARGET shub_store)
    # The tests' own support code, compiled once: an object library, so no
    # libshub_*.a of test names joins the libraries unit.symbols checks.
    add_library(fault_support OBJECT harness.c fault.c)
    target_link_libraries(fault_support PUBLIC shub_agent shub_transport shub_seal
                          PkgConfig::SQLITE PkgConfig::CMOCKA)
    target_compile_definitions(fault_support PUBLIC SHUB_FIXTURES="${SHUB_FIXTURES}"
                               SHUB_BUILD_DIR="${PROJECT_BINARY_DIR}")

    # shub_fault_test(NAME TIMEOUT [LIBS...]): test_fault_NAME.c as
    # integration.fault.NAME.
    function(shub_fault_test name timeout)
        add_executable(test_fault_${name} test_fault_${name}.c)
        target_link_libraries(test_fault_${name} PRIVATE fault_support ${ARGN})
        add_dependencies(test_fault_${name} sharehub-broker sharehub-agent sharehub-audit)
        add_test(NAME integration.fault.${name} COMMAND test_fault_${name})
        set_tests_properties(integration.fault.${name} PROPERTIES LABELS integration
                             TIMEOUT ${timeout} SKIP_RETURN_CODE 77)
    endfunction()

    shub_fault_test(tamper 300 shub_store shub_witness shub_keys)
    shub_fault_test(refusal 180)
    shub_fault_test(exclusive 120)
    shub_fault_test(reload 180)
    shub_fault_test(crash 600)
    shub_fault_test(diskfull 240)
    find_package(Threads REQUIRED)
    shub_fault_test(routing 300 Threads::Threads)
endif()
