# man_suffix.cmake - copy a manual page, adding SUFFIX to the section of its
# .TH line: cmake -DIN=man/master.8 -DOUT=.../master.8tern -DSUFFIX=tern -P
# man_suffix.cmake. The installed file name and its .TH then agree
# (master.8tern, ".TH MASTER 8tern"), as Debian's postfix does with 8postfix.
file(READ "${IN}" text)
string(REGEX MATCH "(^|\n)\\.TH +[^ \n]+ +\"?[0-9][a-z]*\"?" th "${text}")
if(NOT th)
  message(FATAL_ERROR "${IN}: no .TH line")
endif()
string(REGEX REPLACE "(\\.TH +[^ \n]+ +)\"?([0-9])[a-z]*\"?" "\\1\\2${SUFFIX}" newth "${th}")
string(REPLACE "${th}" "${newth}" text "${text}")
file(WRITE "${OUT}" "${text}")
