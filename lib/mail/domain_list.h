/*
 * domain_list - a Postfix domain list parameter such as relay_domains:
 * names and TYPE:NAME tables, separated by commas or white space. A
 * name "example.com" matches that domain and every subdomain,
 * ".example.com" only the subdomains; a table is asked for the domain
 * and then each parent domain. Matching ignores case.
 */
#ifndef TERN_DOMAIN_LIST_H
#define TERN_DOMAIN_LIST_H

#include <stddef.h>
#include "mail/dict.h"

typedef struct domain_list {
    char **names;               /* lowercased */
    size_t nnames;
    maps_t *maps;               /* NULL: no tables */
} domain_list_t;

/* Parse value (the parameter param, for messages) into dl and open its
   tables (missing files are empty). 0 ok; -1 logged. */
int domain_list_open(domain_list_t *dl, const char *param, const char *value);
/* 1 listed, 0 not, -1 a table lookup failed */
int domain_list_match(const domain_list_t *dl, const char *domain);
void domain_list_close(domain_list_t *dl);

#endif
