/** The algorithms magicbox trains, by their command-line names. */
export const algorithmNames = ['promp', 'maml-trpo', 'maml-vpg', 'emaml-trpo', 'emaml-vpg', 'lvc-vpg', 'dice-vpg', 'tmaml', 'dice-maml', 'vpg-dice'] as const;
export type AlgorithmName = (typeof algorithmNames)[number];
