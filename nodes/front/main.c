/*  rastro-front — placeholder until implemented. */
int main (void) { return 1; }
