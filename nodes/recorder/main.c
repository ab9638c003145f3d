/*  rastro-recorder — placeholder until implemented. */
int main (void) { return 1; }
