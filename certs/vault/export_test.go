package vault

// CSRPEM gives the external tests (package vault_test) the CSR helper.
var CSRPEM = csrPEM
