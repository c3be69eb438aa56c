# glvq_set_warnings(<target>): the project's warning set, for host C++ only
# (nvcc must not see GCC warning flags; CUDA targets get -Xcompiler forms).
function(glvq_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)
endfunction()
