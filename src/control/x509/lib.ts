// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata polyfill installed before the library is evaluated. Every module here imports the
// library through this file, so the order holds whoever loads us first.
import 'reflect-metadata';

export * from '@peculiar/x509';
